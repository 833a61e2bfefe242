/** The response-cache store interface; memory and Redis implement it. */
import type { CacheEntry } from './entry.ts';

/** Key → entry with a TTL. Keys are hex hashes from `cacheKey`. */
export interface CacheStore {
  /** The entry, or undefined when absent, expired or unreadable. */
  get(key: string): Promise<CacheEntry | undefined>;
  /** Stores the entry; false when it was not stored (too large). */
  set(key: string, entry: CacheEntry, ttlSeconds: number): Promise<boolean>;
  /** Removes an entry (used by tests and refresh). */
  delete(key: string): Promise<void>;
  /** Answers from process memory, without I/O: it cannot be slow, so no timeout guards it. */
  readonly local?: boolean;
}
