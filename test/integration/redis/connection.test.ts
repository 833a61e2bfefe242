import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeRedis, connectRedis, createRedis, type RedisClient } from '../../../src/redis/client.ts';
import { redisHealth } from '../../../src/redis/health.ts';
import { hashTag, redisKey } from '../../../src/redis/key.ts';
import { startRedis, type TestRedis } from '../../helpers/redis.ts';

const logger = pino({ level: 'silent' });
const config = (url: string) => ({ url, keyPrefix: 'swy', commandTimeoutMs: 300, connectTimeoutMs: 1_000, maxRetriesPerRequest: 1, startupWaitMs: 1_000 });

async function eventually(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('condition not met in time');
}

describe('redis connection', () => {
  let server: TestRedis;
  let redis: RedisClient;

  beforeAll(async () => {
    server = await startRedis();
    redis = createRedis(config(server.url), logger);
  });
  afterAll(async () => {
    await closeRedis(redis);
    await server.stop();
  });

  it('does not connect until asked, then reports health up with latency', async () => {
    expect(redis.status).toBe('wait');
    expect(await connectRedis(redis, 2_000)).toBe(true);
    const health = await redisHealth(redis);
    expect(health.status).toBe('up');
    expect(health.latencyMs).toBeGreaterThanOrEqual(0);
  });

  it('fails fast while Redis is dead and recovers by itself after a restart', async () => {
    await server.kill();
    await eventually(async () => redis.status !== 'ready');
    const started = performance.now();
    await expect(redis.get('anything')).rejects.toThrow();
    expect(performance.now() - started).toBeLessThan(100); // no offline queue: immediate
    const health = await redisHealth(redis, 200);
    expect(health.status).toBe('down');
    await server.restart();
    await eventually(async () => (await redisHealth(redis, 200)).status === 'up');
    expect(await redis.set('back', '1')).toBe('OK');
  });

  it('connectRedis gives up after waitMs without throwing when nothing listens', async () => {
    const nowhere = createRedis(config('redis://127.0.0.1:1'), logger);
    const started = performance.now();
    expect(await connectRedis(nowhere, 200)).toBe(false);
    expect(performance.now() - started).toBeLessThan(1_000);
    await closeRedis(nowhere);
  });

  it('builds keys with one function: prefix, encoded parts, hash tags', () => {
    expect(redisKey('swy', 'cache', 'ab12')).toBe('swy:cache:ab12');
    expect(redisKey('swy', 'tpm', hashTag('key:1'), 42)).toBe('swy:tpm:{key%3A1}:42');
    expect(redisKey('', 'keys')).toBe('keys');
    expect(redisKey('p', 'tenant a/b{c}')).toBe('p:tenant%20a%2Fb%7Bc%7D');
  });
});
