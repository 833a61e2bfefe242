/**
 * A hung Redis (issue 13 item 9): the redis-server process is stopped (SIGSTOP), so its connections stay open
 * and nothing is answered. A request makes several Redis calls in turn (key lookup, cache, limits); before the
 * fix each waited its own commandTimeoutMs. Now the client notices the hang (a PING goes unanswered), drops the
 * connection and fails commands at once until Redis answers again: after the first request or two, the hang adds
 * next to nothing. A key revoked just before the hang keeps working only until auth.maxStaleMs after its last
 * lookup, then gets 503 (fail closed); once Redis answers again the revocation is seen (401).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createKey, revokeKey } from '../../../src/limits/key-admin.ts';
import { RedisKeyStore } from '../../../src/limits/key-store.ts';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { startSim, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.ts';
import { startRedis, type TestRedis } from '../../helpers/redis.ts';
import { chatBody, postJson, redisSection, simBackend, simModel } from './harness.ts';

const commandTimeoutMs = 300;
const maxStaleMs = 2_500;
let redis: TestRedis;
let sim: Simulator;
let gateway: TestGateway;
let admin: Redis;
let secret = '';

beforeAll(async () => {
  [redis, sim] = await Promise.all([startRedis(), startSim({ flavor: 'vllm' })]);
  admin = new Redis(redis.url);
  secret = (await createKey(new RedisKeyStore(admin, 'swy'), { id: 'app', tenant: 't', rpm: 100_000, tpm: 10_000_000, budget: { amount: 100, period: 'day' } })).secret;
  gateway = await startTestGateway({
    backends: [simBackend('sim', sim)],
    models: [simModel('chat', 'sim', sim)],
    // production timeouts: the hang is what is under test
    redis: redisSection(redis.url, { commandTimeoutMs }),
    cache: { timeoutMs: commandTimeoutMs },
    auth: { mode: 'keys', cacheTtlMs: 200, maxStaleMs },
    limits: { onRedisError: 'open' },
  });
});

afterAll(async () => {
  await redis?.resume();
  await gateway?.close();
  admin?.disconnect();
  await Promise.all([sim?.close(), redis?.stop()]);
});

it('adds about nothing once noticed, fails closed past maxStaleMs, and recovers by itself', { timeout: 30_000 }, async () => {
  // Warm: the key is looked up (and cached) now.
  expect((await postJson(gateway.url, '/v1/chat/completions', chatBody('warm'), { key: secret })).status).toBe(200);
  const lookedUp = performance.now();
  await revokeKey(new RedisKeyStore(admin, 'swy'), 'app');
  await redis.pause();

  const seen: Array<{ at: number; ms: number; status: number; code: string | undefined }> = [];
  while (performance.now() - lookedUp < maxStaleMs + 1_500) {
    const started = performance.now();
    // temperature 0: cacheable, so the cache lookup and the limits both go to Redis.
    const answer = await postJson(gateway.url, '/v1/chat/completions', chatBody(`hung ${seen.length}`), { key: secret });
    seen.push({ at: started - lookedUp, ms: performance.now() - started, status: answer.status, code: answer.json?.error?.code });
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  // Latency: the first requests may wait for the timeouts; after that, nothing close to commandTimeoutMs.
  const steady = seen.slice(2);
  expect(steady.length).toBeGreaterThan(10);
  for (const request of steady) expect(request.ms, `request at ${Math.round(request.at)} ms took ${Math.round(request.ms)} ms`).toBeLessThan(commandTimeoutMs);
  expect(seen[0]?.ms).toBeLessThan(3 * commandTimeoutMs + 200);

  // Staleness: served from the stale lookup within maxStaleMs, refused (fail closed) past it, never anything else.
  for (const request of seen) {
    if (request.at + request.ms < maxStaleMs - 200) expect(request.status, `at ${Math.round(request.at)} ms`).toBe(200);
    else if (request.at > maxStaleMs + 200) expect([request.status, request.code], `at ${Math.round(request.at)} ms`).toEqual([503, 'auth_unavailable']);
  }
  expect(seen.some((request) => request.status === 503)).toBe(true);

  // Redis answers again: the revocation is seen, without a restart.
  await redis.resume();
  await waitFor(async () => (await postJson(gateway.url, '/v1/chat/completions', chatBody('after'), { key: secret })).status === 401, 10_000, 'the revoked key to be refused');
});
