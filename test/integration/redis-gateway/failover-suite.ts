/**
 * The failover scenario that sentinel-failover.test.ts and
 * cluster-failover.test.ts run on their topology: two gateways on the same
 * Redis (`limits.onRedisError: open` and `closed`), API keys kept in Redis
 * (rpm, tpm and budgets), the response cache on; traffic through both, the
 * Redis primary SIGKILLed mid-traffic, a replica promoted by Redis itself.
 * What a user checks: the open gateway answers every request; the closed one
 * answers or refuses with 503 limits_unavailable (OpenAI shape), nothing else;
 * both serve with limits counted in Redis again after the promotion, without a
 * restart; what was in Redis before the kill (keys, counters, a spent budget,
 * a cached answer) is still there on the promoted replica.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../../src/limits/key-admin.ts';
import { RedisKeyStore } from '../../../src/limits/key-store.ts';
import type { RedisClient } from '../../../src/redis/client.ts';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { startSim, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.ts';
import { chatBody, getJson, postJson, simBackend, simModel, type RawAnswer } from './harness.ts';

/** The Redis under test, seen from the suite. */
export interface FailoverTopology {
  /** The gateway's `redis` section, without timeouts. */
  redis: Record<string, unknown>;
  /** A client for setup (creating keys), in the same mode as the gateway's. */
  admin(): RedisClient;
  /** SIGKILLs the primary that holds the API keys; returns a token for waitForFailover. */
  killPrimary(keyPrefix: string): Promise<unknown>;
  /** Waits until Redis has promoted a replica in place of the killed primary. */
  waitForFailover(killed: unknown): Promise<void>;
  /**
   * A planned switchover (maintenance: SENTINEL FAILOVER, CLUSTER FAILOVER on a replica): the primary of the API
   * keys becomes a replica with its client connections still open; resolves once the switch is complete.
   */
  switchover(keyPrefix: string): Promise<void>;
  /** Whether a gateway's Redis client sends the API key reads and writes to the node Redis now names primary for them. */
  onPrimary(client: RedisClient, keyPrefix: string): Promise<boolean>;
  stop(): Promise<void>;
}

const adminToken = `admin-${randomUUID()}`;
const price = { inputPer1M: 1, outputPer1M: 1 };

export function failoverSuite(name: string, start: () => Promise<FailoverTopology>): void {
  let topology: FailoverTopology;
  let admin: RedisClient;
  let sim: Simulator;
  let open: TestGateway;
  let closed: TestGateway;
  const secrets = { steady: '', small: '', broke: '' };
  const keyPrefix = 'swy';

  beforeAll(async () => {
    [topology, sim] = await Promise.all([start(), startSim({ flavor: 'vllm' })]);
    admin = topology.admin();
    admin.on('error', () => undefined); // it reconnects by itself; the kill is expected
    const store = new RedisKeyStore(admin, keyPrefix);
    // Every key lives in Redis (what `switchyard keys create` does): a lookup is a Redis read.
    secrets.steady = (await createKey(store, { id: 'steady', tenant: 'ops', rpm: 100_000, tpm: 10_000_000, budget: { amount: 1_000, period: 'day' } })).secret;
    secrets.small = (await createKey(store, { id: 'small', tenant: 'ops', rpm: 4, tpm: 10_000_000 })).secret;
    secrets.broke = (await createKey(store, { id: 'broke', tenant: 'thrift', budget: { amount: 0.000_01, period: 'day' } })).secret;
    const common = {
      backends: [simBackend('sim', sim, { cost: price })],
      models: [simModel('chat', 'sim', sim)],
      // Production command timeout: the outage is what is under test.
      redis: { ...topology.redis, keyPrefix, commandTimeoutMs: 300, connectTimeoutMs: 1_000, startupWaitMs: 5_000 },
      cache: { timeoutMs: 300 },
      admin: { token: adminToken },
    };
    [open, closed] = await Promise.all([
      // A short key cache: every few requests look the key up in Redis again.
      startTestGateway({ ...common, auth: { mode: 'keys', cacheTtlMs: 50 }, limits: { onRedisError: 'open' } }),
      startTestGateway({ ...common, auth: { mode: 'keys', cacheTtlMs: 50 }, limits: { onRedisError: 'closed' } }),
    ]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([open?.close(), closed?.close()]);
    admin?.disconnect();
    await Promise.all([sim?.close(), topology?.stop()]);
  });

  const chat = (gateway: TestGateway, body: unknown, key: string) => postJson(gateway.baseURL, '/chat/completions', body, { key });
  const readyz = async (gateway: TestGateway) => (await getJson(gateway.url, '/readyz', { authorization: `Bearer ${adminToken}` })).json;
  const metrics = async (gateway: TestGateway) => (await getJson(gateway.url, '/metrics', { authorization: `Bearer ${adminToken}` })).text;
  const cachedPrompt = chatBody(`cached before the failover ${randomUUID()}`);

  describe(`${name}: gateways on Redis through a primary failover`, () => {
    it('before: keys from Redis, limits counted in Redis, budgets, cache; no Redis errors (no CROSSSLOT)', async () => {
      for (const gateway of [open, closed]) expect((await readyz(gateway)).redis).toMatchObject({ status: 'up' });
      const first = await chat(open, cachedPrompt, secrets.steady);
      expect(first.status).toBe(200);
      expect(first.headers.get('x-switchyard-cache')).toBe('MISS');
      expect(first.headers.get('x-ratelimit-limit-requests')).toBe('100000');
      expect(first.headers.get('x-ratelimit-limit-tokens')).toBe('10000000');
      expect((await chat(closed, cachedPrompt, secrets.steady)).headers.get('x-switchyard-cache')).toBe('HIT');
      // The small key's window: 2 of its 4 requests now (the other two after the failover).
      const remaining: string[] = [];
      for (const gateway of [open, closed])
        remaining.push((await chat(gateway, chatBody(`small ${randomUUID()}`, { temperature: 0.7 }), secrets.small)).headers.get('x-ratelimit-remaining-requests') ?? '');
      expect(remaining).toEqual(['3', '2']);
      // The broke key spends its budget on one answer; the next request is refused.
      expect((await chat(open, chatBody(`broke ${randomUUID()}`, { temperature: 0.7 }), secrets.broke)).status).toBe(200);
      const refused = await chat(closed, chatBody(`broke again ${randomUUID()}`, { temperature: 0.7 }), secrets.broke);
      expect(refused.status).toBe(429);
      expect(refused.json.error.type).toBe('insufficient_quota');
      // Every script and multi-key operation ran: none failed (a CROSSSLOT error on a cluster would count here).
      for (const gateway of [open, closed]) {
        const text = await metrics(gateway);
        expect(text).not.toMatch(/^switchyard_redis_errors_total\{[^}]*\} [1-9]/m);
        expect(text).not.toMatch(/^switchyard_cache_errors_total\{[^}]*\} [1-9]/m);
      }
    });

    it('primary SIGKILLed mid-traffic: open answers everything, closed answers or refuses cleanly; both recover by themselves', async () => {
      await underTraffic('kill', async () => {
        const killed = await topology.killPrimary(keyPrefix);
        await topology.waitForFailover(killed);
      });
    }, 60_000); // the waits inside bound it: traffic 10 s, promotion 20 s, recovery 15 s

    it('after: what was in Redis before the kill is still there (keys, counters, spent budget, cache); readyz up', async () => {
      for (const gateway of [open, closed]) {
        await waitFor(async () => (await readyz(gateway)).redis?.status === 'up', 10_000, 'readyz to report Redis up');
      }
      // The answer cached before the kill is served from the promoted replica.
      expect((await chat(closed, cachedPrompt, secrets.steady)).headers.get('x-switchyard-cache')).toBe('HIT');
      // The small key's counter carried over: 2 more requests in its window, then 429.
      const remaining: string[] = [];
      for (const gateway of [open, closed])
        remaining.push((await chat(gateway, chatBody(`small after ${randomUUID()}`, { temperature: 0.7 }), secrets.small)).headers.get('x-ratelimit-remaining-requests') ?? '');
      expect(remaining).toEqual(['1', '0']);
      const limited = await chat(open, chatBody(`small over ${randomUUID()}`, { temperature: 0.7 }), secrets.small);
      expect(limited.status).toBe(429);
      expect(limited.json.error.code).toBe('rate_limit_exceeded');
      // The spent budget carried over.
      const broke = await chat(open, chatBody(`broke after ${randomUUID()}`, { temperature: 0.7 }), secrets.broke);
      expect(broke.status).toBe(429);
      expect(broke.json.error.type).toBe('insufficient_quota');
      // A new cache entry works on the new primary.
      const fresh = chatBody(`cached after the failover ${randomUUID()}`);
      expect((await chat(open, fresh, secrets.steady)).headers.get('x-switchyard-cache')).toBe('MISS');
      expect((await chat(closed, fresh, secrets.steady)).headers.get('x-switchyard-cache')).toBe('HIT');
    });

    it('planned switchover mid-traffic (the old primary stays up): the gateways move to the new primary at once', async () => {
      await underTraffic('switchover', async () => {
        await topology.switchover(keyPrefix);
        // Not when the old primary is demoted (seconds later on Sentinel): it would take writes that are then lost.
        const onPrimary = (gateway: TestGateway) => topology.onPrimary(gateway.app.switchyard.redis as RedisClient, keyPrefix).catch(() => false); // reconnecting
        await waitFor(async () => (await onPrimary(open)) && (await onPrimary(closed)), 3_000, 'both gateways to use the new primary');
      });
      // Writes land on the new primary: a new cache entry is written and read back, counters move.
      const fresh = chatBody(`cached after the switchover ${randomUUID()}`);
      expect((await chat(open, fresh, secrets.steady)).headers.get('x-switchyard-cache')).toBe('MISS');
      expect((await chat(closed, fresh, secrets.steady)).headers.get('x-switchyard-cache')).toBe('HIT');
      const first = await chat(closed, chatBody(`counted ${randomUUID()}`, { temperature: 0.7 }), secrets.steady);
      const second = await chat(closed, chatBody(`counted ${randomUUID()}`, { temperature: 0.7 }), secrets.steady);
      expect(Number(second.headers.get('x-ratelimit-remaining-requests'))).toBe(Number(first.headers.get('x-ratelimit-remaining-requests')) - 1);
    }, 60_000);
  });

  /**
   * Runs `change` while two loops per gateway send requests (some cacheable, some streamed) with the steady key,
   * then waits until both gateways count requests in Redis again. Only 200 from the open gateway, only 200 or
   * 503 limits_unavailable from the closed one, every stream complete.
   */
  async function underTraffic(what: string, change: () => Promise<void>): Promise<void> {
    const seen = { open: new Map<number, number>(), closed: new Map<number, number>() };
    /** Answers counted in Redis (rate-limit headers present). */
    const counted = { open: 0, closed: 0 };
    const bad: string[] = [];
    let stop = false;
    const loop = async (which: 'open' | 'closed', gateway: TestGateway) => {
      let i = 0;
      while (!stop) {
        const body = i % 3 === 0 ? chatBody(`traffic ${what} ${which} ${i % 6}`) : chatBody(`traffic ${what} ${which} ${i}`, { temperature: 0.7 });
        let answer: RawAnswer;
        try {
          answer = await chat(gateway, i % 4 === 0 ? { ...body, stream: true } : body, secrets.steady);
        } catch (error) {
          bad.push(`${which}: ${(error as Error).message}`);
          i++;
          continue;
        }
        seen[which].set(answer.status, (seen[which].get(answer.status) ?? 0) + 1);
        if (answer.status === 200 && answer.headers.get('x-ratelimit-limit-requests') === '100000') counted[which]++;
        if (answer.status === 503 && answer.json?.error?.code !== 'limits_unavailable') bad.push(`${which}: 503 ${answer.text}`);
        if (answer.status !== 200 && answer.status !== 503) bad.push(`${which}: ${answer.status} ${answer.text}`);
        if (answer.status === 200 && answer.headers.get('content-type')?.includes('event-stream') && !answer.text.includes('data: [DONE]'))
          bad.push(`${which}: stream without [DONE]`);
        i++;
      }
    };
    const loops = Promise.all([loop('open', open), loop('open', open), loop('closed', closed), loop('closed', closed)]);
    let changedMs = 0;
    let recoveredMs = 0;
    try {
      await waitFor(() => counted.open >= 5 && counted.closed >= 5, 10_000, 'traffic before the change');
      const startedAt = Date.now();
      await change();
      changedMs = Date.now() - startedAt;
      // Recovery: both gateways count requests in Redis again, on the new primary, without a restart.
      const after = { open: counted.open, closed: counted.closed };
      await waitFor(() => counted.open >= after.open + 5 && counted.closed >= after.closed + 5, 15_000, 'both gateways to count limits in Redis again');
      recoveredMs = Date.now() - startedAt;
    } finally {
      stop = true;
      await loops;
    }
    // In the test output: how long Redis took and when the gateways counted in Redis again.
    console.log(`${name} ${what}: new primary after ${changedMs} ms, both gateways counting in Redis again after ${recoveredMs} ms`, {
      open: Object.fromEntries(seen.open),
      closed: Object.fromEntries(seen.closed),
    });
    expect(bad).toEqual([]);
    expect([...seen.open.keys()]).toEqual([200]);
    expect([...seen.closed.keys()].every((status) => status === 200 || status === 503)).toBe(true);
  }
}
