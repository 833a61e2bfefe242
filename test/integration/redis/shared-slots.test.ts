/**
 * The shared-slot scripts (cluster/slots.ts) against a real redis-server: the fleet-wide limit, release
 * notifications only when the backend was full, renewal re-adding a lost lease, expiry of a dead holder's
 * leases, the background count, and the per-replica fallback when Redis is gone. Spare leases: kept far from the
 * limit and taken without a Redis call, never past the limit, released to Redis near it (waking a waiting replica),
 * given back after two idle renewal ticks and on stop, dropped (not re-added) when Redis lost them, unused while
 * Redis is away; and a random walk of two replicas that never lets the set hold more than the limit.
 */
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MAX_SPARES, SharedSlots } from '../../../src/cluster/slots.ts';
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

/** Commands a client sends, observed on their way out (they still go to the real server). */
function commandsOf(connection: RedisClient): string[] {
  const sent: string[] = [];
  const send = connection.sendCommand.bind(connection);
  connection.sendCommand = ((command: { name: string }, stream?: unknown) => {
    sent.push(command.name);
    return send(command as never, stream as never);
  }) as typeof connection.sendCommand;
  return sent;
}

const KEY = 'swy:slots:{box}';
const settle = () => new Promise((resolve) => setTimeout(resolve, 30));
async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('spare leases', () => {
  let own: RedisClient;
  let sent: string[];
  beforeEach(async () => {
    own = createRedis({ url: redis.url, keyPrefix: 'swy', commandTimeoutMs: 1_000, connectTimeoutMs: 1_000, maxRetriesPerRequest: 1, startupWaitMs: 0 }, logger);
    await connectRedis(own, 5_000);
    sent = commandsOf(own);
  });
  afterEach(async () => {
    await closeRedis(own);
  });

  /** A replica on one 4-slot backend, through the observed connection. */
  function spareReplica(id: string, leaseTtlMs = 1_000, connection: RedisClient = own, limit = 4): SharedSlots {
    return new SharedSlots({ redis: connection, keyPrefix: 'swy', replicaId: id, leaseTtlMs, loadRefreshMs: 50, logger }, new Map([['box', limit]]));
  }

  it('far from the limit a released lease stays as a spare and the next acquire takes it without a Redis call', async () => {
    const a = spareReplica('a');
    const b = spareReplica('b');
    await a.refreshLoad();
    await b.refreshLoad();
    expect(await a.acquire('box')).toBe('leased');
    a.release('box');
    expect(await b.acquire('box')).toBe('leased');
    b.release('box');
    expect([a.spares('box'), b.spares('box')]).toEqual([1, 1]);
    const before = sent.length;
    for (let cycle = 0; cycle < 5; cycle++) {
      for (const replica of [a, b]) {
        expect(await replica.acquire('box')).toBe('leased');
        replica.release('box');
      }
    }
    expect(sent.length - before).toBe(0); // ten requests, not one round trip
    expect([a.stats.spareHits, b.stats.spareHits]).toEqual([5, 5]);
    // the set holds exactly the leases that exist: one spare each, live
    expect((await raw.zrange(KEY, '0', '-1')).sort()).toEqual(['a:1', 'b:1']);
    expect(Number(await raw.zscore(KEY, 'a:1'))).toBeGreaterThan(Number((await raw.time())[0]) * 1000);
    // the load view counts a spare as this replica's own, so it is not taken for the other's load; and this count
    // finds the fleet at half the limit (a spare each): A's spare goes back
    const seen: Array<[number, number]> = [];
    a.onCount = (_id, total, ownShare) => seen.push([total, ownShare]);
    await a.refreshLoad();
    expect(seen).toEqual([[2, 1]]);
    expect(a.spares('box')).toBe(0);
    await waitUntil(async () => (await raw.zcard(KEY)) === 1, 'the spare to go back');
  });

  it('never past the limit: spares and fresh leases from two replicas fill it, the fifth acquire is full', async () => {
    const a = spareReplica('a');
    const b = spareReplica('b');
    await a.refreshLoad();
    await b.refreshLoad();
    for (const replica of [a, b]) {
      await replica.acquire('box');
      replica.release('box');
    }
    expect(await a.acquire('box')).toBe('leased'); // spare
    expect(await b.acquire('box')).toBe('leased'); // spare
    expect(await a.acquire('box')).toBe('leased'); // fresh
    expect(await b.acquire('box')).toBe('leased'); // fresh
    expect(a.stats.spareHits + b.stats.spareHits).toBe(2);
    expect(await a.acquire('box')).toBe('full');
    expect(await b.acquire('box')).toBe('full');
    expect(await raw.zcard(KEY)).toBe(4);
    expect(a.held('box') + b.held('box')).toBe(4);
  });

  it('near the limit releases go to Redis, and a count at half the limit gives spares back, waking a waiting replica', async () => {
    const a = spareReplica('a');
    const b = spareReplica('b');
    const listener = new Redis(redis.url);
    const messages: string[] = [];
    listener.on('message', (_channel, message) => messages.push(message));
    await listener.subscribe(a.channel);
    try {
      // fleet at 2 of 4 (A's two requests): B's released lease goes back to Redis
      await a.acquire('box');
      await a.acquire('box');
      await b.refreshLoad();
      await b.acquire('box');
      const before = sent.length;
      b.release('box');
      expect(b.spares('box')).toBe(0);
      expect(sent.length - before).toBe(1);
      await settle();
      expect(await raw.zcard(KEY)).toBe(2);
      // full: a release publishes, and the spare rule does not hold it back
      await b.acquire('box');
      await b.acquire('box');
      expect(await a.acquire('box')).toBe('full');
      b.release('box');
      await waitUntil(async () => messages.length === 1, 'the release message');
      expect(messages).toEqual(['box']);
      b.release('box');
      a.release('box');
      a.release('box');
      await settle();
      expect(await raw.zcard(KEY)).toBe(0);
      messages.length = 0;

      // B keeps a spare from a count of an idle fleet; A then fills the rest: B's next count gives it back at once
      await b.refreshLoad();
      await b.acquire('box');
      b.release('box');
      expect(b.spares('box')).toBe(1);
      for (let index = 0; index < 3; index++) expect(await a.acquire('box')).toBe('leased');
      expect(await a.acquire('box')).toBe('full');
      await b.refreshLoad();
      expect(b.spares('box')).toBe(0);
      await waitUntil(async () => messages.length === 1, 'the message of the freed spare');
      expect(await a.acquire('box')).toBe('leased');
      expect(await raw.zcard(KEY)).toBe(4);
    } finally {
      listener.disconnect();
    }
  });

  it('unused spares go back after two renewal ticks (a used one starts again), all of them on stop', async () => {
    const a = spareReplica('a');
    await a.refreshLoad();
    await a.acquire('box');
    a.release('box');
    await a.renew(); // first tick: now idle since a tick
    expect(a.spares('box')).toBe(1);
    await a.acquire('box'); // used: no longer idle
    a.release('box');
    await a.renew();
    expect(a.spares('box')).toBe(1);
    expect(await raw.zcard(KEY)).toBe(1);
    await a.renew(); // unused since the last tick: given back
    expect(a.spares('box')).toBe(0);
    await waitUntil(async () => (await raw.zcard(KEY)) === 0, 'the idle spare to go back');

    // with the timers running (TTL 300 ms, ticks every 100 ms) an idle spare is back within about 2 × TTL / 3
    const timed = spareReplica('t', 300);
    timed.start();
    try {
      await waitUntil(async () => timed.countedAt !== 0, 'the first count');
      await timed.acquire('box');
      timed.release('box');
      expect(timed.spares('box')).toBe(1);
      const keptAt = Date.now();
      await waitUntil(async () => (await raw.zcard(KEY)) === 0, 'the idle spare to go back', 1_000);
      expect(Date.now() - keptAt).toBeLessThan(600);
    } finally {
      timed.stop();
    }

    const stopping = spareReplica('s');
    await stopping.refreshLoad();
    await stopping.acquire('box');
    await stopping.acquire('box');
    stopping.release('box'); // 2 of 4 in the fleet: to Redis
    stopping.release('box'); // 1 of 4: a spare
    expect(stopping.spares('box')).toBe(1);
    await stopping.acquire('box');
    stopping.release('box');
    stopping.stop();
    expect(stopping.spares('box')).toBe(0);
    await waitUntil(async () => (await raw.zcard(KEY)) === 0, 'stop to give the spare back');
    await stopping.acquire('box');
    stopping.release('box'); // stopped: released, never kept
    expect(stopping.spares('box')).toBe(0);
  });

  it('a spare Redis lost is dropped, not re-added, while a running request’s lease is', async () => {
    const a = spareReplica('a', 1_000, own, 8);
    await a.refreshLoad();
    await a.acquire('box');
    await a.acquire('box');
    a.release('box'); // 2 of 8: kept
    expect([a.held('box'), a.spares('box')]).toEqual([1, 1]);
    await raw.del(KEY); // a restarted Redis
    await a.renew();
    expect(a.stats.recreated).toBe(1); // the running request's lease is back
    expect(a.spares('box')).toBe(0); // the spare is not: re-adding it could pass the limit
    expect(await raw.zrange(KEY, '0', '-1')).toEqual(['a:1']);
  });

  it('takes and keeps no spare while Redis is away', async () => {
    const away = createRedis({ url: redis.url, keyPrefix: 'swy', commandTimeoutMs: 300, connectTimeoutMs: 300, maxRetriesPerRequest: 0, startupWaitMs: 0 }, logger);
    await connectRedis(away, 5_000);
    const a = spareReplica('a', 1_000, away);
    await a.refreshLoad();
    await a.acquire('box');
    a.release('box');
    expect(a.spares('box')).toBe(1);
    away.disconnect();
    await waitUntil(async () => away.status !== 'ready', 'the connection to drop');
    expect(await a.acquire('box')).toBe('local');
    expect(a.stats.spareHits).toBe(0);
    expect(a.spares('box')).toBe(0);
    a.release('box');
    expect(a.spares('box')).toBe(0);
  });

  it('a random walk of two replicas on 8 slots never puts more than the limit in the set, and the set is what they hold', async () => {
    let seed = 15;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    const replicas = [spareReplica('a', 10_000, own, 8), spareReplica('b', 10_000, own, 8)];
    for (const replica of replicas) await replica.refreshLoad();
    let hits = 0;
    let full = 0;
    for (let step = 0; step < 300; step++) {
      const replica = replicas[Math.floor(random() * 2)] as SharedSlots;
      // quiet, busy (to full and beyond), quiet again
      const up = step >= 100 && step < 200 ? 0.6 : 0.3;
      const roll = random();
      if (roll < up) full += (await replica.acquire('box')) === 'full' ? 1 : 0;
      else if (roll < 0.9) replica.release('box');
      else if (roll < 0.95) await replica.refreshLoad();
      else await replica.renew();
      await own.ping(); // fire-and-forget releases of this connection are done
      const members = await raw.zrange(KEY, '0', '-1');
      expect(members.length).toBeLessThanOrEqual(8);
      const [a, b] = replicas as [SharedSlots, SharedSlots];
      expect(members.length).toBe(a.held('box') + a.spares('box') + b.held('box') + b.spares('box'));
      expect(Math.max(a.spares('box'), b.spares('box'))).toBeLessThanOrEqual(MAX_SPARES);
      hits = a.stats.spareHits + b.stats.spareHits;
    }
    expect(hits).toBeGreaterThan(10); // the walk went through both regimes: spares taken, and the limit met
    expect(full).toBeGreaterThan(0);
  });
});
