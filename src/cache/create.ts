/** Builds the cache store the config asks for, wrapped for the hot path. */
import type { Logger } from 'pino';
import type { RedisClient } from '../redis/client.ts';
import type { CacheConfig } from './config.ts';
import { loadEncryptionKey } from './encryption.ts';
import { MemoryCacheStore } from './memory-store.ts';
import { RedisCacheStore } from './redis-store.ts';
import { ResilientCache, type CacheFailure } from './resilient.ts';

/** What createCacheStore needs. */
export interface CacheStoreDependencies {
  config: CacheConfig;
  logger: Logger;
  /** Shared Redis; absent = in-memory store (one process). */
  redis?: RedisClient | undefined;
  keyPrefix?: string;
  onFailure?: (operation: 'get' | 'set', reason: CacheFailure) => void;
}

/**
 * A ResilientCache over Redis (when given) or memory. Throws at startup when
 * the encryption key is set but unusable. With an encryption key but no
 * Redis the key is unused: memory never leaves the process.
 */
export function createCacheStore(deps: CacheStoreDependencies): ResilientCache {
  const { config } = deps;
  const encryptionKey = loadEncryptionKey(config);
  const store = deps.redis
    ? new RedisCacheStore(deps.redis, { keyPrefix: deps.keyPrefix ?? 'swy', maxEntryBytes: config.maxEntryBytes, encryptionKey })
    : new MemoryCacheStore({ maxEntries: config.memory.maxEntries, maxBytes: config.memory.maxBytes, maxEntryBytes: config.maxEntryBytes });
  const options: ConstructorParameters<typeof ResilientCache>[1] = { timeoutMs: config.timeoutMs, logger: deps.logger };
  if (deps.onFailure) options.onFailure = deps.onFailure;
  return new ResilientCache(store, options);
}
