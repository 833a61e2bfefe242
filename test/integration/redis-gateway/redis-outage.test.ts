/**
 * Redis killed under a running gateway, then restarted: with
 * `limits.onRedisError: open` requests keep flowing (cache quietly skipped,
 * limits not enforced); with `closed` requests a limit applies to are refused
 * with 503 limits_unavailable in OpenAI shape, the others flow. /readyz shows
 * Redis down but stays ready. After the restart both gateways recover by
 * themselves: limits are enforced again and the cache hits again.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../../src/limits/api-keys.ts';
import { createKey } from '../../../src/limits/key-admin.ts';
import { RedisKeyStore } from '../../../src/limits/key-store.ts';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { startSim, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.ts';
import { startRedis, type TestRedis } from '../../helpers/redis.ts';
import { chatBody, getJson, metricValue, postJson, redisSection, simBackend, simModel, type RawAnswer } from './harness.ts';

const keys = {
  openLimited: generateApiKey(),
  openHigh: generateApiKey(),
  closedLimited: generateApiKey(),
  closedFree: generateApiKey(),
};
/** /metrics on the client listener needs the admin token once keys are on. */
const adminToken = 'admin-token-redis-outage-0123';
let redisKeySecret = '';

let redis: TestRedis;
let sim: Simulator;
let open: TestGateway;
let closed: TestGateway;

beforeAll(async () => {
  redis = await startRedis();
  sim = await startSim({ flavor: 'vllm' });
  const admin = new Redis(redis.url);
  redisKeySecret = (await createKey(new RedisKeyStore(admin, 'swy'), { id: 'from-redis', tenant: 'r' })).secret;
  admin.disconnect();
  const common = {
    backends: [simBackend('sim', sim)],
    models: [simModel('chat', 'sim', sim)],
    // production timeouts here: the outage is what is under test
    redis: redisSection(redis.url, { commandTimeoutMs: 300 }),
    cache: { timeoutMs: 300 },
    admin: { token: adminToken },
  };
  [open, closed] = await Promise.all([
    startTestGateway({
      ...common,
      auth: {
        mode: 'keys',
        cacheTtlMs: 50,
        keys: [
          { id: 'open-limited', hash: keys.openLimited.hash, rpm: 3, tpm: 100_000 },
          { id: 'open-high', hash: keys.openHigh.hash, rpm: 100_000, tpm: 10_000_000 },
        ],
      },
      limits: { onRedisError: 'open' },
    }),
    startTestGateway({
      ...common,
      auth: {
        mode: 'keys',
        keys: [
          { id: 'closed-limited', hash: keys.closedLimited.hash, rpm: 100_000, tpm: 10_000_000 },
          { id: 'closed-free', hash: keys.closedFree.hash },
        ],
      },
      limits: { onRedisError: 'closed' },
    }),
  ]);
});

afterAll(async () => {
  await Promise.all([open?.close(), closed?.close()]);
  await sim?.close();
  await redis?.stop();
});

const chat = (gateway: TestGateway, body: unknown, key: string) => postJson(gateway.baseURL, '/chat/completions', body, { key });
const readyRedis = async (gateway: TestGateway) => (await getJson(gateway.url, '/readyz', { authorization: `Bearer ${adminToken}` })).json?.redis?.status as string | undefined;

function expectLimitsUnavailable(answer: RawAnswer): void {
  expect(answer.status).toBe(503);
  expect(answer.json).toEqual({ error: { message: expect.any(String), type: 'server_error', param: null, code: 'limits_unavailable' } });
  expect(Number(answer.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
}

const cachedPrompt = chatBody(`survives the outage ${randomUUID()}`);

describe('Redis killed and restarted under running gateways', () => {
  it('before: both gateways use Redis (readyz up, limits, cache)', async () => {
    for (const gateway of [open, closed]) {
      const ready = await getJson(gateway.url, '/readyz', { authorization: `Bearer ${adminToken}` });
      expect(ready.status).toBe(200);
      expect(ready.json.redis).toMatchObject({ status: 'up' });
      expect(typeof ready.json.redis.latencyMs).toBe('number');
    }
    expect((await chat(open, cachedPrompt, keys.openHigh.secret)).headers.get('x-switchyard-cache')).toBe('MISS');
    expect((await chat(open, cachedPrompt, keys.openHigh.secret)).headers.get('x-switchyard-cache')).toBe('HIT');
    const limited = await chat(closed, chatBody('before'), keys.closedLimited.secret);
    expect(limited.status).toBe(200);
    expect(limited.headers.get('x-ratelimit-limit-requests')).toBe('100000');
    // a key kept in Redis, seen once by the open gateway
    expect((await chat(open, chatBody('redis key'), redisKeySecret)).status).toBe(200);
  });

  it('while down: fail-open flows, fail-closed refuses only limited requests; readyz shows Redis down and stays ready', async () => {
    await redis.kill();
    try {
      await waitFor(async () => (await readyRedis(open)) === 'down' && (await readyRedis(closed)) === 'down', 10_000, 'readyz to report Redis down');
      for (const gateway of [open, closed]) {
        const ready = await getJson(gateway.url, '/readyz', { authorization: `Bearer ${adminToken}` });
        expect(ready.status).toBe(200);
        expect(ready.json.status).toBe('ready');
        expect(ready.json.redis.status).toBe('down');
        expect(typeof ready.json.redis.error).toBe('string');
      }

      // open: more requests than the key's rpm of 3, all answered; the cache is quietly skipped
      const before = sim.stats().requests;
      for (let i = 0; i < 5; i++) {
        const answer = await chat(open, chatBody(`open during outage ${i}`, { temperature: 0.7 }), keys.openLimited.secret);
        expect(answer.status).toBe(200);
        expect(answer.headers.get('x-switchyard-cache')).toBe('BYPASS');
        expect(answer.headers.get('x-ratelimit-limit-requests')).toBeNull(); // nothing was counted
      }
      const cachedDuringOutage = await chat(open, cachedPrompt, keys.openHigh.secret);
      expect(cachedDuringOutage.status).toBe(200);
      expect(cachedDuringOutage.headers.get('x-switchyard-cache')).toBe('MISS');
      const streamed = await chat(open, { ...chatBody('stream during outage'), stream: true }, keys.openHigh.secret);
      expect(streamed.status).toBe(200);
      expect(streamed.text).toContain('data: [DONE]');
      expect(sim.stats().requests).toBe(before + 7);
      // a Redis key this replica saw before keeps working; one it never saw cannot be checked
      expect((await chat(open, chatBody('stale key'), redisKeySecret)).status).toBe(200);
      const unknown = await chat(open, chatBody('unknown key'), generateApiKey().secret);
      expect(unknown.status).toBe(503);
      expect(unknown.json.error).toMatchObject({ code: 'auth_unavailable', type: 'server_error' });

      // closed: refused cleanly when a limit applies, answered when none does
      const beforeClosed = sim.stats().requests;
      expectLimitsUnavailable(await chat(closed, chatBody('closed during outage'), keys.closedLimited.secret));
      expectLimitsUnavailable(await chat(closed, { ...chatBody('closed stream'), stream: true }, keys.closedLimited.secret));
      await expect(
        closed.client({ apiKey: keys.closedLimited.secret }).chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'sdk' }] }),
      ).rejects.toMatchObject({
        status: 503,
        code: 'limits_unavailable',
      });
      expect(sim.stats().requests).toBe(beforeClosed);
      const free = await chat(closed, chatBody('no limit applies'), keys.closedFree.secret);
      expect(free.status).toBe(200);
      expect(free.headers.get('x-switchyard-cache')).toBe('MISS');

      // counted and logged, but not once per request
      const openMetrics = (await getJson(open.url, '/metrics', { authorization: `Bearer ${adminToken}` })).text;
      expect(metricValue(openMetrics, 'switchyard_redis_errors_total', { limiter: 'requests', operation: 'check' })).toBeGreaterThanOrEqual(5);
      expect(metricValue(openMetrics, 'switchyard_redis_errors_total', { limiter: 'tokens', operation: 'check' })).toBeGreaterThanOrEqual(5);
      expect(metricValue(openMetrics, 'switchyard_cache_errors_total', { operation: 'get' })).toBeGreaterThanOrEqual(1);
      const closedMetrics = (await getJson(closed.url, '/metrics', { authorization: `Bearer ${adminToken}` })).text;
      expect(metricValue(closedMetrics, 'switchyard_refused_requests_total', { reason: 'limits_unavailable' })).toBe(3);
      const warnings = open.logs.filter((line) => line.includes('"level":40'));
      expect(warnings.filter((line) => line.includes('limits: Redis failed')).length).toBeLessThanOrEqual(2);
      expect(warnings.filter((line) => line.includes('response cache get skipped')).length).toBeLessThanOrEqual(1);
    } finally {
      await redis.restart();
    }
  });

  it('after the restart: both recover without a restart (limits enforced, cache hits again)', async () => {
    await waitFor(async () => (await readyRedis(open)) === 'up' && (await readyRedis(closed)) === 'up', 10_000, 'readyz to report Redis up again');

    // the restarted Redis is empty: the key's window starts over and is enforced again
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const answer = await chat(open, chatBody(`after ${i}`, { temperature: 0.7 }), keys.openLimited.secret);
      expect(answer.status).toBe(200);
      remaining.push(answer.headers.get('x-ratelimit-remaining-requests') ?? '');
    }
    expect(remaining).toEqual(['2', '1', '0']);
    const fourth = await chat(open, chatBody('after 3', { temperature: 0.7 }), keys.openLimited.secret);
    expect(fourth.status).toBe(429);
    expect(fourth.json.error.code).toBe('rate_limit_exceeded');

    expect((await chat(open, cachedPrompt, keys.openHigh.secret)).headers.get('x-switchyard-cache')).toBe('MISS');
    expect((await chat(open, cachedPrompt, keys.openHigh.secret)).headers.get('x-switchyard-cache')).toBe('HIT');

    const limited = await chat(closed, chatBody('after, closed'), keys.closedLimited.secret);
    expect(limited.status).toBe(200);
    expect(limited.headers.get('x-ratelimit-limit-requests')).toBe('100000');
    expect(limited.headers.get('x-ratelimit-limit-tokens')).toBe('10000000');
  });

  it('mid-traffic: a kill and restart during a stream of requests never produces anything but 200 (open) or 200/503 (closed)', async () => {
    const seen = { open: new Map<number, number>(), closed: new Map<number, number>() };
    const bad: string[] = [];
    let stop = false;
    const loop = async (name: 'open' | 'closed', gateway: TestGateway, key: string) => {
      let i = 0;
      while (!stop) {
        const body = i % 3 === 0 ? chatBody(`traffic ${name} ${i % 6}`) : chatBody(`traffic ${name} ${i}`, { temperature: 0.7 });
        const answer = await chat(gateway, i % 4 === 0 ? { ...body, stream: true } : body, key);
        seen[name].set(answer.status, (seen[name].get(answer.status) ?? 0) + 1);
        if (answer.status === 503 && answer.json?.error?.code !== 'limits_unavailable') bad.push(`${name}: 503 ${answer.text}`);
        if (answer.status !== 200 && answer.status !== 503) bad.push(`${name}: ${answer.status} ${answer.text}`);
        if (answer.status === 200 && answer.headers.get('content-type')?.includes('event-stream') && !answer.text.includes('data: [DONE]'))
          bad.push(`${name}: stream without [DONE]`);
        i++;
      }
    };
    const loops = Promise.all([loop('open', open, keys.openHigh.secret), loop('closed', closed, keys.closedLimited.secret)]);
    try {
      await waitFor(() => (seen.open.get(200) ?? 0) >= 5 && (seen.closed.get(200) ?? 0) >= 5, 10_000, 'traffic before the kill');
      await redis.kill();
      await waitFor(() => (seen.closed.get(503) ?? 0) >= 5, 10_000, 'closed to refuse during the outage');
      const openBefore = seen.open.get(200) ?? 0;
      await waitFor(() => (seen.open.get(200) ?? 0) >= openBefore + 5, 10_000, 'open to keep answering during the outage');
      await redis.restart();
      const closedOk = seen.closed.get(200) ?? 0;
      await waitFor(() => (seen.closed.get(200) ?? 0) >= closedOk + 5, 10_000, 'closed to answer again after the restart');
    } finally {
      stop = true;
      await loops;
    }
    expect(bad).toEqual([]);
    expect([...seen.open.keys()]).toEqual([200]);
    expect([...seen.closed.keys()].sort()).toEqual([200, 503]);
    // limits are counted in Redis again
    const answer = await chat(closed, chatBody('final'), keys.closedLimited.secret);
    expect(answer.headers.get('x-ratelimit-limit-requests')).toBe('100000');
  });
});
