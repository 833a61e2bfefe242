/**
 * Where API keys live: the interface, the in-memory store (config keys, and
 * keys created at run time without Redis) and the Redis store (one hash
 * `prefix:keys`, field = key hash, value = the record as JSON; one key, so
 * it works on a Cluster too).
 */
import type { RedisClient } from '../redis/client.ts';
import { redisKey } from '../redis/key.ts';
import type { KeyRecord } from './api-keys.ts';
import { defaultKeyId } from './api-keys.ts';
import type { ConfigKey } from './config.ts';

/** A store of key records, looked up by the SHA-256 of the secret. */
export interface KeyStore {
  findByHash(hash: string): Promise<KeyRecord | undefined>;
  list(): Promise<KeyRecord[]>;
  /** Creates or replaces the record with this hash. */
  put(record: KeyRecord): Promise<void>;
}

/** Records from `auth.keys` (which hold hashes only). */
export function recordsFromConfig(keys: readonly ConfigKey[], createdAt = new Date(0).toISOString()): KeyRecord[] {
  return keys.map((key) => {
    const record: KeyRecord = { id: key.id ?? defaultKeyId(key.hash), hash: key.hash, tenant: key.tenant, models: [...key.models], createdAt };
    if (key.rpm !== undefined) record.rpm = key.rpm;
    if (key.tpm !== undefined) record.tpm = key.tpm;
    if (key.budget !== undefined) record.budget = { ...key.budget };
    if (key.maxTokensCap !== undefined) record.maxTokensCap = key.maxTokensCap;
    if (key.zones !== undefined) record.zones = [...key.zones];
    if (key.guard !== undefined) record.guard = { ...key.guard };
    if (key.revoked) record.revoked = true;
    return record;
  });
}

/** In-process key store. */
export class MemoryKeyStore implements KeyStore {
  private readonly byHash = new Map<string, KeyRecord>();

  constructor(records: readonly KeyRecord[] = []) {
    for (const record of records) this.byHash.set(record.hash, record);
  }

  async findByHash(hash: string): Promise<KeyRecord | undefined> {
    return this.byHash.get(hash);
  }

  async list(): Promise<KeyRecord[]> {
    return [...this.byHash.values()];
  }

  async put(record: KeyRecord): Promise<void> {
    this.byHash.set(record.hash, record);
  }
}

function parseRecord(text: string | null | undefined): KeyRecord | undefined {
  if (!text) return undefined;
  try {
    const record = JSON.parse(text) as KeyRecord;
    return typeof record.hash === 'string' && typeof record.id === 'string' ? record : undefined;
  } catch {
    return undefined;
  }
}

/** Keys in Redis, shared by every replica and by `switchyard keys`. */
export class RedisKeyStore implements KeyStore {
  private readonly redis: RedisClient;
  private readonly key: string;

  constructor(redis: RedisClient, keyPrefix: string) {
    this.redis = redis;
    this.key = redisKey(keyPrefix, 'keys');
  }

  async findByHash(hash: string): Promise<KeyRecord | undefined> {
    return parseRecord(await this.redis.hget(this.key, hash));
  }

  async list(): Promise<KeyRecord[]> {
    const values = await this.redis.hvals(this.key);
    return values.map(parseRecord).filter((record): record is KeyRecord => record !== undefined);
  }

  async put(record: KeyRecord): Promise<void> {
    await this.redis.hset(this.key, record.hash, JSON.stringify(record));
  }
}
