/** In-process cache store: LRU bounded by entry count and bytes, with TTLs. */
import type { CacheEntry } from './entry.ts';
import { entryBytes } from './entry.ts';
import type { CacheStore } from './store.ts';

interface Slot {
  entry: CacheEntry;
  bytes: number;
  expiresAt: number;
}

/** Options of the memory store. */
export interface MemoryCacheOptions {
  maxEntries: number;
  maxBytes: number;
  maxEntryBytes: number;
  /** Clock in epoch ms (tests). */
  now?: () => number;
}

/** LRU over a Map (insertion order = recency). */
export class MemoryCacheStore implements CacheStore {
  readonly local = true;
  private readonly slots = new Map<string, Slot>();
  private readonly options: MemoryCacheOptions;
  private readonly now: () => number;
  private totalBytes = 0;
  private cursor: MapIterator<string> = this.slots.keys();

  constructor(options: MemoryCacheOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  /** Entries and bytes held now. */
  get size(): { entries: number; bytes: number } {
    return { entries: this.slots.size, bytes: this.totalBytes };
  }

  async get(key: string): Promise<CacheEntry | undefined> {
    const slot = this.slots.get(key);
    if (!slot) return undefined;
    if (slot.expiresAt <= this.now()) {
      this.remove(key, slot);
      return undefined;
    }
    this.slots.delete(key);
    this.slots.set(key, slot);
    return slot.entry;
  }

  async set(key: string, entry: CacheEntry, ttlSeconds: number): Promise<boolean> {
    const bytes = entryBytes(entry);
    if (bytes > this.options.maxEntryBytes || bytes > this.options.maxBytes) return false;
    const previous = this.slots.get(key);
    if (previous) this.remove(key, previous);
    this.slots.set(key, { entry, bytes, expiresAt: this.now() + ttlSeconds * 1000 });
    this.totalBytes += bytes;
    while ((this.slots.size > this.options.maxEntries || this.totalBytes > this.options.maxBytes) && this.evictOldest());
    return true;
  }

  /**
   * Removes the least recently used entry. The cursor is one long-lived key
   * iterator: Map iterators are live (they skip deleted entries and reach
   * re-inserted ones at their new place), so it walks the LRU order, and each
   * hole left by a deletion is stepped over once in total. A fresh iterator per
   * eviction would step over every hole at the front of the table each time.
   */
  private evictOldest(): boolean {
    let next = this.cursor.next();
    if (next.done) {
      this.cursor = this.slots.keys(); // an iterator that reached the end stays there
      next = this.cursor.next();
      if (next.done) return false;
    }
    const slot = this.slots.get(next.value);
    if (slot) this.remove(next.value, slot);
    return true;
  }

  async delete(key: string): Promise<void> {
    const slot = this.slots.get(key);
    if (slot) this.remove(key, slot);
  }

  private remove(key: string, slot: Slot): void {
    this.slots.delete(key);
    this.totalBytes -= slot.bytes;
  }
}
