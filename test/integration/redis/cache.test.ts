import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createCacheStore } from '../../../src/cache/create.ts';
import { entryFromResponse } from '../../../src/cache/entry.ts';
import { cacheKey } from '../../../src/cache/key.ts';
import { RedisCacheStore } from '../../../src/cache/redis-store.ts';
import { closeRedis, connectRedis, createRedis, type RedisClient } from '../../../src/redis/client.ts';
import { startRedis, type TestRedis } from '../../helpers/redis.ts';

const logger = pino({ level: 'silent' });
const prompt = 'PROMPT-the-patient-record-of-jane-doe';
const completion = 'ANSWER-diagnosis-is-confidential';
const request = { model: 'm', messages: [{ role: 'user', content: prompt }], temperature: 0 };
const answer = JSON.stringify({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'public-m',
  choices: [{ index: 0, message: { role: 'assistant', content: completion }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 9, completion_tokens: 5, total_tokens: 14 },
});

async function eventually(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('condition not met in time');
}

describe('response cache on Redis', () => {
  let server: TestRedis;
  let redis: RedisClient;
  let raw: Redis;

  beforeAll(async () => {
    server = await startRedis();
    redis = createRedis({ url: server.url, keyPrefix: 'swy', commandTimeoutMs: 300, connectTimeoutMs: 1_000, maxRetriesPerRequest: 1, startupWaitMs: 0 }, logger);
    await connectRedis(redis, 2_000);
    raw = new Redis(server.url);
  });
  beforeEach(() => server.flush());
  afterAll(async () => {
    raw.disconnect();
    await closeRedis(redis);
    await server.stop();
  });

  it('stores and returns entries; the key is the hex hash only', async () => {
    const store = new RedisCacheStore(redis, { keyPrefix: 'swy', maxEntryBytes: 100_000 });
    const key = cacheKey('tenant-a', 'public-m', 'chat', request);
    const entry = entryFromResponse('chat', answer, undefined, 1_000);
    expect(await store.set(key, entry, 60)).toBe(true);
    expect(await store.get(key)).toEqual(entry);
    expect(await store.get(cacheKey('tenant-b', 'public-m', 'chat', request))).toBeUndefined(); // tenant isolation
    expect(await raw.keys('*')).toEqual([`swy:cache:${key}`]);
    const ttl = await raw.pttl(`swy:cache:${key}`);
    expect(ttl).toBeGreaterThan(59_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('expires entries after their TTL', async () => {
    const store = new RedisCacheStore(redis, { keyPrefix: 'swy', maxEntryBytes: 100_000 });
    await store.set('k', entryFromResponse('chat', answer), 1);
    expect(await store.get('k')).toBeDefined();
    const ttl = await raw.pttl(store.storageKey('k'));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1_000);
    await raw.pexpire(store.storageKey('k'), 20); // fast-forward the rest of the TTL
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(await store.get('k')).toBeUndefined();
  });

  it('skips entries above maxEntryBytes', async () => {
    const store = new RedisCacheStore(redis, { keyPrefix: 'swy', maxEntryBytes: 300 });
    expect(await store.set('big', entryFromResponse('chat', answer.replace(completion, 'x'.repeat(400))), 60)).toBe(false);
    expect(await raw.exists('swy:cache:big')).toBe(0);
  });

  it('encrypts at rest: raw Redis holds no prompt or answer text, keys are hex hashes', async () => {
    const encryptionKey = randomBytes(32);
    const store = new RedisCacheStore(redis, { keyPrefix: 'swy', maxEntryBytes: 100_000, encryptionKey });
    const key = cacheKey('tenant-a', 'public-m', 'chat', request);
    const entry = entryFromResponse('chat', answer);
    await store.set(key, entry, 60);
    expect(await store.get(key)).toEqual(entry);

    const keys = await raw.keys('*');
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(/^swy:cache:[0-9a-f]{64}$/);
    const stored = (await raw.getBuffer(keys[0] ?? '')) as Buffer;
    for (const text of [prompt, completion, 'jane', 'diagnosis', 'chat.completion', 'prompt_tokens']) {
      expect(stored.includes(Buffer.from(text))).toBe(false);
    }
    expect(stored.toString('latin1')).not.toContain('jane');

    // a reader without the key, or with another key, sees a miss; so does a moved value
    expect(await new RedisCacheStore(redis, { keyPrefix: 'swy', maxEntryBytes: 100_000 }).get(key)).toBeUndefined();
    expect(await new RedisCacheStore(redis, { keyPrefix: 'swy', maxEntryBytes: 100_000, encryptionKey: randomBytes(32) }).get(key)).toBeUndefined();
    const otherKey = cacheKey('tenant-b', 'public-m', 'chat', request);
    await raw.set(`swy:cache:${otherKey}`, stored);
    expect(await store.get(otherKey)).toBeUndefined();
    // with encryption on, a plaintext value is ignored
    await new RedisCacheStore(redis, { keyPrefix: 'swy', maxEntryBytes: 100_000 }).set('plain', entry, 60);
    expect(await store.get('plain')).toBeUndefined();
  });

  it('a killed Redis makes the cache a fast miss (no throw), counted; it recovers after a restart', async () => {
    const failures: string[] = [];
    const cache = createCacheStore({
      config: { mode: 'deterministic', ttlSeconds: 60, maxEntryBytes: 100_000, timeoutMs: 80, singleFlight: true, memory: { maxEntries: 10, maxBytes: 1e6 } },
      logger,
      redis,
      onFailure: (operation, reason) => failures.push(`${operation}:${reason}`),
    });
    const entry = entryFromResponse('chat', answer);
    expect(await cache.set('k', entry, 60)).toBe(true);
    expect(await cache.get('k')).toEqual(entry);

    await server.kill();
    await eventually(async () => redis.status !== 'ready');
    const started = performance.now();
    expect(await cache.get('k')).toBeUndefined();
    expect(await cache.set('k2', entry, 60)).toBe(false);
    expect(performance.now() - started).toBeLessThan(200);
    expect(failures.length).toBeGreaterThanOrEqual(2);

    await server.restart();
    await eventually(async () => (await cache.set('k3', entry, 60)) === true);
    expect(await cache.get('k3')).toEqual(entry);
  });
});
