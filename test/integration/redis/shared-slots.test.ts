/**
 * The shared-slot scripts (cluster/slots.ts) against a real redis-server: the fleet-wide limit, release
 * notifications only when the backend was full, renewal re-adding a lost lease, expiry of a dead holder's
 * leases, the background count, and the per-replica fallback when Redis is gone.
 */
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SharedSlots } from '../../../src/cluster/slots.ts';
import { closeRedis, connectRedis, createRedis, type RedisClient } from '../../../src/redis/client.ts';
import { startRedis, type TestRedis } from '../../helpers/redis.ts';

const logger = pino({ level: 'silent' });
let redis: TestRedis;
let client: RedisClient;
let raw: Redis;

beforeAll(async () => {
  redis = await startRedis();
  client = createRedis({ url: redis.url, keyPrefix: 'swy', commandTimeoutMs: 1_000, connectTimeoutMs: 1_000, maxRetriesPerRequest: 1, startupWaitMs: 0 }, logger);
  await connectRedis(client, 5_000);
  raw = new Redis(redis.url);
});
afterAll(async () => {
  raw?.disconnect();
  if (client) await closeRedis(client);
  await redis?.stop();
});
beforeEach(async () => {
  await raw.flushdb();
});

function replica(id: string, leaseTtlMs = 1_000): SharedSlots {
  return new SharedSlots({ redis: client, keyPrefix: 'swy', replicaId: id, leaseTtlMs, loadRefreshMs: 50, logger }, new Map([['box', 2]]));
}

describe('shared slots', () => {
  it('hold the limit across replicas; a release when full is published, one when not full is not', async () => {
    const a = replica('a');
    const b = replica('b');
    expect(await a.acquire('box')).toBe('leased');
    expect(await b.acquire('box')).toBe('leased');
    expect(await a.acquire('box')).toBe('full');
    expect(await raw.zrange('swy:slots:{box}', '0', '-1')).toEqual(['a:1', 'b:1']);

    const listener = new Redis(redis.url);
    const messages: string[] = [];
    listener.on('message', (_channel, message) => messages.push(message));
    await listener.subscribe(a.channel);
    try {
      b.release('box'); // the backend was full: published
      await new Promise((resolve) => setTimeout(resolve, 100));
      a.release('box'); // not full any more: silent
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(messages).toEqual(['box']);
      expect(await raw.zcard('swy:slots:{box}')).toBe(0);
    } finally {
      listener.disconnect();
    }
  });

  it('a holder that stops renewing loses its slots after the lease TTL; renewal re-adds a lease that was lost', async () => {
    const dead = replica('dead', 300);
    const live = replica('live', 300);
    expect(await dead.acquire('box')).toBe('leased');
    expect(await dead.acquire('box')).toBe('leased');
    expect(await live.acquire('box')).toBe('full');
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect(await live.acquire('box')).toBe('leased'); // expired leases are dropped as slots are taken
    await raw.del('swy:slots:{box}'); // e.g. a restarted Redis
    await live.renew();
    expect(live.stats.recreated).toBe(1);
    expect(await raw.zrange('swy:slots:{box}', '0', '-1')).toEqual(['live:2']); // its first try found the backend full;
  });

  it('count the fleet in the background, with this replica’s own share', async () => {
    const a = replica('a');
    const b = replica('b');
    await a.acquire('box');
    await b.acquire('box');
    const seen: Array<[string, number, number]> = [];
    a.onCount = (id, total, own) => seen.push([id, total, own]);
    await a.refreshLoad();
    expect(seen).toEqual([['box', 2, 1]]);
    expect(a.countedAt).toBeGreaterThan(0);
  });

  it('fall back to a local slot when Redis is gone, and say so once', async () => {
    const lines: string[] = [];
    const gone = createRedis({ url: 'redis://127.0.0.1:1', keyPrefix: 'swy', commandTimeoutMs: 100, connectTimeoutMs: 100, maxRetriesPerRequest: 0, startupWaitMs: 0 }, logger);
    const slots = new SharedSlots(
      { redis: gone, keyPrefix: 'swy', replicaId: 'x', leaseTtlMs: 1_000, loadRefreshMs: 50, logger: pino({ level: 'info' }, { write: (line: string) => lines.push(line) }) },
      new Map([['box', 2]]),
    );
    expect(await slots.acquire('box')).toBe('local');
    expect(await slots.acquire('box')).toBe('local');
    expect(slots.shared).toBe(false);
    expect(slots.stats.fallbacks).toBe(2);
    expect(lines.filter((line) => line.includes('slots are per replica')).length).toBe(1);
    gone.disconnect();
  });
});
