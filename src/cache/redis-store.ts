/**
 * Cache store on Redis: key `prefix:cache:<sha256 hex>`, value the serialised
 * entry (AES-256-GCM encrypted when a key is configured), expiry by PX.
 * Errors propagate: wrap the store in ResilientCache for the hot path.
 */
import type { RedisClient } from '../redis/client.ts';
import { redisKey } from '../redis/key.ts';
import { decryptValue, encryptValue } from './encryption.ts';
import type { CacheEntry } from './entry.ts';
import { parseEntry, serialiseEntry } from './entry.ts';
import type { CacheStore } from './store.ts';

/** Options of the Redis store. */
export interface RedisCacheOptions {
  keyPrefix: string;
  maxEntryBytes: number;
  /** 32-byte AES key; values are stored in plaintext JSON without it. */
  encryptionKey?: Buffer | undefined;
}

const plainMarker = 0x7b; // '{': a plaintext JSON entry

/** Redis-backed cache store. */
export class RedisCacheStore implements CacheStore {
  private readonly redis: RedisClient;
  private readonly options: RedisCacheOptions;

  constructor(redis: RedisClient, options: RedisCacheOptions) {
    this.redis = redis;
    this.options = options;
  }

  /** The Redis key for a cache key (exposed for tests). */
  storageKey(key: string): string {
    return redisKey(this.options.keyPrefix, 'cache', key);
  }

  async get(key: string): Promise<CacheEntry | undefined> {
    const storageKey = this.storageKey(key);
    const value = await this.redis.getBuffer(storageKey);
    if (!value || value.length === 0) return undefined;
    const encryption = this.options.encryptionKey;
    if (encryption) {
      // With encryption on, plaintext values (written before it was enabled, or injected) are ignored.
      const text = decryptValue(encryption, value, storageKey);
      return text === undefined ? undefined : parseEntry(text);
    }
    if (value[0] !== plainMarker) return undefined; // encrypted, but no key configured
    return parseEntry(value.toString('utf8'));
  }

  async set(key: string, entry: CacheEntry, ttlSeconds: number): Promise<boolean> {
    const text = serialiseEntry(entry);
    if (Buffer.byteLength(text) > this.options.maxEntryBytes) return false;
    const storageKey = this.storageKey(key);
    const encryption = this.options.encryptionKey;
    const value = encryption ? encryptValue(encryption, text, storageKey) : text;
    await this.redis.set(storageKey, value, 'PX', ttlSeconds * 1000);
    return true;
  }

  async delete(key: string): Promise<void> {
    await this.redis.del(this.storageKey(key));
  }
}
