/**
 * The key store the gateway uses: config keys first, then Redis keys behind
 * a short per-replica cache. Auth never fails open: while Redis is down, a
 * key this replica looked up before keeps working (stale) for at most
 * `maxStaleMs` after that lookup, so a revocation Redis could not deliver
 * still takes effect within a known time; past it, and for unknown keys, 503
 * auth_unavailable, whatever `limits.onRedisError` says.
 */
import type { KeyRecord } from './api-keys.ts';
import { gatewayError } from '../errors.ts';
import type { KeyStore } from './key-store.ts';
import { MemoryKeyStore } from './key-store.ts';

/** Options of the layered store. */
export interface LayeredKeyStoreOptions {
  /** How long a Redis lookup (found or not) is reused. */
  cacheTtlMs: number;
  /** How long after its lookup a cached verdict may stand in while Redis fails (default: forever). */
  maxStaleMs?: number;
  /** Most lookups remembered (oldest dropped first). */
  maxCached?: number;
  /** Called when Redis failed during a lookup (for metrics). */
  onRedisError?: (error: unknown) => void;
  now?: () => number;
}

interface Cached {
  record: KeyRecord | undefined;
  at: number;
}

/** Config keys + Redis keys (optional) with a lookup cache. */
export class LayeredKeyStore implements KeyStore {
  private configured: MemoryKeyStore;
  private readonly shared: KeyStore | undefined;
  private readonly options: LayeredKeyStoreOptions;
  private readonly cache = new Map<string, Cached>();
  private readonly now: () => number;

  /** `shared`: the Redis store, or undefined to keep run-time keys in memory. */
  constructor(configured: MemoryKeyStore, shared: KeyStore | undefined, options: LayeredKeyStoreOptions) {
    this.configured = configured;
    this.shared = shared ?? new MemoryKeyStore();
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  /** The keys of a reloaded config file replace the old ones at once (keys made with `switchyard keys` stay). */
  replaceConfigured(configured: MemoryKeyStore): void {
    this.configured = configured;
  }

  async findByHash(hash: string): Promise<KeyRecord | undefined> {
    const configured = await this.configured.findByHash(hash);
    if (configured) return configured;
    const shared = this.shared as KeyStore;
    const cached = this.cache.get(hash);
    if (cached && this.now() - cached.at < this.options.cacheTtlMs) return cached.record;
    let record: KeyRecord | undefined;
    try {
      record = await shared.findByHash(hash);
    } catch (error) {
      this.options.onRedisError?.(error);
      // Stale but known: keep serving it while Redis is down, for a bounded time.
      if (cached && this.now() - cached.at < (this.options.maxStaleMs ?? Number.POSITIVE_INFINITY)) return cached.record;
      throw gatewayError('SWY_ERR_AUTH_UNAVAILABLE', { cause: error, retryAfterSeconds: 1 });
    }
    this.remember(hash, record);
    return record;
  }

  async list(): Promise<KeyRecord[]> {
    return [...(await this.configured.list()), ...(await (this.shared as KeyStore).list())];
  }

  async put(record: KeyRecord): Promise<void> {
    if (await this.configured.findByHash(record.hash)) {
      throw new Error(`key ${record.id} is defined in the config (auth.keys); change it there`);
    }
    await (this.shared as KeyStore).put(record);
    this.cache.delete(record.hash);
  }

  private remember(hash: string, record: KeyRecord | undefined): void {
    this.cache.delete(hash);
    this.cache.set(hash, { record, at: this.now() });
    const max = this.options.maxCached ?? 10_000;
    for (const oldest of this.cache.keys()) {
      if (this.cache.size <= max) break;
      this.cache.delete(oldest);
    }
  }
}
