/**
 * Stored Responses answers, for `previous_response_id` and
 * `GET /v1/responses/{id}`: in Redis only (replicas must see each other's
 * turns), per tenant (the key holds a hash of the tenant, so one tenant can
 * never read another's by guessing an id), with a TTL, and encrypted like the
 * cache entries when `cache.encryptionKey` is set (AES-256-GCM bound to the
 * key: a value moved under another tenant's key fails to decrypt).
 * The gateway is stateless by default: only answers to requests that say
 * `store: true` are kept.
 */
import { createHash } from 'node:crypto';
import { decryptValue, encryptValue } from '../../cache/encryption.ts';
import type { RedisClient } from '../../redis/client.ts';
import { redisKey } from '../../redis/key.ts';

/** One stored turn: the Response as the client got it, and the input items that led to it. */
export interface StoredResponse {
  response: Record<string, unknown>;
  /** Input items of every turn up to and including the one that produced `response` (without instructions). */
  input: unknown[];
}

/** Options of the store. */
export interface ResponseStoreOptions {
  keyPrefix: string;
  ttlSeconds: number;
  /** Per-tenant data policy: `store: false` keeps nothing of that tenant's, `storeTtlSeconds` its own TTL. */
  tenants?: Readonly<Record<string, { responses?: { store?: boolean; storeTtlSeconds?: number } }>>;
  /** 32-byte AES key (the cache's); values are plaintext JSON without it. */
  encryptionKey: Buffer | undefined;
}

/** Where a tenant's responses are kept; undefined `redis` means there is no store. */
export class ResponseStore {
  private readonly redis: RedisClient | undefined;
  private readonly options: ResponseStoreOptions;

  constructor(redis: RedisClient | undefined, options: ResponseStoreOptions) {
    this.redis = redis;
    this.options = options;
  }

  /** True when responses can be stored (Redis is configured). */
  get available(): boolean {
    return this.redis !== undefined;
  }

  /** True when this tenant's responses may be kept (Redis is configured and its data policy allows it). */
  keepsFor(tenant: string): boolean {
    return this.redis !== undefined && this.options.tenants?.[tenant]?.responses?.store !== false;
  }

  /** The Redis key of a response: tenant hashed, id as given. */
  storageKey(tenant: string, id: string): string {
    const tenantHash = createHash('sha256').update(tenant).digest('hex').slice(0, 32);
    return redisKey(this.options.keyPrefix, 'responses', tenantHash, id);
  }

  async load(tenant: string, id: string): Promise<StoredResponse | undefined> {
    if (!this.redis) return undefined;
    const key = this.storageKey(tenant, id);
    const value = await this.redis.getBuffer(key);
    if (!value || value.length === 0) return undefined;
    const encryption = this.options.encryptionKey;
    const text = encryption ? decryptValue(encryption, value, key) : value[0] === 0x7b ? value.toString('utf8') : undefined;
    if (text === undefined) return undefined;
    try {
      const parsed = JSON.parse(text) as Partial<StoredResponse>;
      if (!parsed.response || typeof parsed.response !== 'object' || !Array.isArray(parsed.input)) return undefined;
      return { response: parsed.response, input: parsed.input };
    } catch {
      return undefined;
    }
  }

  async save(tenant: string, id: string, stored: StoredResponse): Promise<void> {
    if (!this.redis) return;
    const key = this.storageKey(tenant, id);
    const text = JSON.stringify(stored);
    const encryption = this.options.encryptionKey;
    const ttlSeconds = this.options.tenants?.[tenant]?.responses?.storeTtlSeconds ?? this.options.ttlSeconds;
    await this.redis.set(key, encryption ? encryptValue(encryption, text, key) : text, 'PX', ttlSeconds * 1000);
  }
}
