/**
 * Several gateway replicas on one Redis: two in this process and one as a
 * separate `node src/main.ts serve` process. They share API keys created in
 * Redis, enforce one request limit and one token limit between them, and
 * share the response cache.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheKey } from '../../../src/cache/key.ts';
import { createKey } from '../../../src/limits/key-admin.ts';
import { RedisKeyStore } from '../../../src/limits/key-store.ts';
import { reservationTokens } from '../../../src/proxy/estimate.ts';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { startSim, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.ts';
import { startRedis, type TestRedis } from '../../helpers/redis.ts';
import { awayFromMinuteBoundary, chatBody, patientCache, contentOf, postJson, redisSection, simBackend, simModel, startGatewayProcess, type GatewayProcess } from './harness.ts';

let redis: TestRedis;
let sim: Simulator;
let replicaA: TestGateway;
let replicaB: TestGateway;
let replicaP: GatewayProcess;
let rpmSecret = '';
let tpmSecret = '';
let cacheSecret = '';

const rpm = 6;
const reserveCompletionTokens = 64;
const tpmBody = { model: 'chat', messages: [{ role: 'user', content: 'How many replicas share this limit?' }], temperature: 0.7, max_tokens: 6 };
const reserved = reservationTokens(tpmBody, reserveCompletionTokens);
let used = 0;

beforeAll(async () => {
  redis = await startRedis();
  sim = await startSim({ flavor: 'vllm' });
  // what the body really uses, asked of the simulator directly
  const probe = await fetch(`${sim.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...tpmBody, model: sim.options.model }),
  });
  used = ((await probe.json()) as { usage: { total_tokens: number } }).usage.total_tokens;

  // keys live in Redis only: every replica finds them there
  const admin = new Redis(redis.url);
  const store = new RedisKeyStore(admin, 'swy');
  rpmSecret = (await createKey(store, { id: 'shared-rpm', tenant: 'ops', rpm })).secret;
  tpmSecret = (await createKey(store, { id: 'shared-tpm', tenant: 'ops', tpm: reserved + used })).secret;
  cacheSecret = (await createKey(store, { id: 'shared-cache', tenant: 'ops' })).secret;
  admin.disconnect();

  const config = {
    backends: [simBackend('sim', sim)],
    models: [simModel('chat', 'sim', sim)],
    redis: redisSection(redis.url),
    cache: patientCache,
    auth: { mode: 'keys' },
    limits: { reserveCompletionTokens },
  };
  [replicaA, replicaB, replicaP] = await Promise.all([startTestGateway(config), startTestGateway(config), startGatewayProcess(config)]);
});

afterAll(async () => {
  await Promise.all([replicaA?.close(), replicaB?.close(), replicaP?.close()]);
  await sim?.close();
  await redis?.stop();
});

/**
 * The cache is written after the answer went out, so another replica may look before the write landed:
 * wait until the entry is in Redis (the stored key is the hash of tenant, model, endpoint and request).
 */
async function stored(body: Record<string, unknown>): Promise<void> {
  const key = `swy:cache:${cacheKey('ops', 'chat', 'chat', body)}`;
  const raw = new Redis(redis.url);
  try {
    await waitFor(async () => (await raw.exists(key)) === 1, 3_000, `cache entry ${key}`);
  } finally {
    raw.disconnect();
  }
}

const replicas = () => [
  { name: 'A', base: replicaA.baseURL },
  { name: 'B', base: replicaB.baseURL },
  { name: 'P', base: replicaP.baseURL },
];

describe('replicas on one Redis', () => {
  it('enforce one shared requests-per-minute limit: alternating requests, total allowed = the limit', async () => {
    const statuses: string[] = [];
    const remaining: string[] = [];
    for (let i = 0; i < rpm + 3; i++) {
      const replica = replicas()[i % 3]!;
      const answer = await postJson(replica.base, '/chat/completions', chatBody(`rpm ${i} ${randomUUID()}`), { key: rpmSecret });
      statuses.push(`${replica.name}:${answer.status}${answer.status === 200 || answer.status === 429 ? '' : `:${answer.text}`}`);
      if (answer.status === 200) remaining.push(answer.headers.get('x-ratelimit-remaining-requests') ?? '');
      else {
        expect(answer.json.error.code).toBe('rate_limit_exceeded');
        expect(answer.headers.get('retry-after')).toBeTruthy();
      }
    }
    expect(statuses).toEqual(['A:200', 'B:200', 'P:200', 'A:200', 'B:200', 'P:200', 'A:429', 'B:429', 'P:429']);
    expect(remaining).toEqual(['5', '4', '3', '2', '1', '0']);
  });

  it('enforce one shared tokens-per-minute limit, settled across replicas', async () => {
    await awayFromMinuteBoundary();
    // limit = 1 reservation + 1 real use: A's request is settled to its use, so B's fits exactly; P's does not.
    const onA = await postJson(replicaA.baseURL, '/chat/completions', tpmBody, { key: tpmSecret });
    expect(onA.status).toBe(200);
    expect(onA.json.usage.total_tokens).toBe(used);
    // settlement runs after the answer went out: wait until it landed in Redis
    const raw = new Redis(redis.url);
    try {
      await waitFor(async () => Number((await raw.get(`swy:tpm:{shared-tpm}:${Math.floor(Date.now() / 60_000)}`)) ?? 0) === used, 10_000, 'settlement of the request on A');
    } finally {
      raw.disconnect();
    }
    const onB = await postJson(replicaB.baseURL, '/chat/completions', tpmBody, { key: tpmSecret });
    expect(onB.status).toBe(200);
    expect(onB.headers.get('x-ratelimit-remaining-tokens')).toBe('0');
    const onP = await postJson(replicaP.baseURL, '/chat/completions', tpmBody, { key: tpmSecret });
    expect(onP.status).toBe(429);
    expect(onP.json.error.code).toBe('rate_limit_exceeded');
    expect(onP.headers.get('x-ratelimit-limit-tokens')).toBe(String(reserved + used));
  });

  it('share the cache: MISS on A, HIT on B and on the separate process', async () => {
    const body = chatBody(`shared cache ${randomUUID()}`);
    const before = sim.stats().requests;
    const onA = await postJson(replicaA.baseURL, '/chat/completions', body, { key: cacheSecret });
    expect(onA.headers.get('x-switchyard-cache')).toBe('MISS');
    await stored(body);
    const onB = await postJson(replicaB.baseURL, '/chat/completions', body, { key: cacheSecret });
    expect(onB.headers.get('x-switchyard-cache')).toBe('HIT');
    const onP = await postJson(replicaP.baseURL, '/chat/completions', { ...body, stream: true }, { key: cacheSecret });
    expect(onP.headers.get('x-switchyard-cache')).toBe('HIT');
    expect(onP.text).toContain('data: [DONE]');
    expect(contentOf(onB)).toBe(contentOf(onA));
    expect(sim.stats().requests).toBe(before + 1);

    // and the other way round: stored by the process, served by A
    const other = chatBody(`shared cache reverse ${randomUUID()}`);
    expect((await postJson(replicaP.baseURL, '/chat/completions', other, { key: cacheSecret })).headers.get('x-switchyard-cache')).toBe('MISS');
    await stored(other);
    const viaA = await postJson(replicaA.baseURL, '/chat/completions', other, { key: cacheSecret });
    expect(viaA.headers.get('x-switchyard-cache')).toBe('HIT');
    expect(sim.stats().requests).toBe(before + 2);
  });

  it('the separate process logs no secret', async () => {
    // its stdout is buffered (flushed every 250 ms): wait for the request lines
    await waitFor(() => replicaP.logs.join('\n').includes('shared-cache'), 3_000, 'the replica to flush its log lines');
    const logs = replicaP.logs.join('\n');
    for (const secret of [rpmSecret, tpmSecret, cacheSecret]) expect(logs).not.toContain(secret);
  });
});
