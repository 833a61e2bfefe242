/**
 * `cache.mode` at two levels through a real gateway (issue 13 item 10): with
 * `cache: { mode: off }` at the top level, repeated temperature-0 requests
 * (chat, streamed chat, embeddings) are never answered from the cache and
 * nothing is written to Redis; a per-model mode set explicitly still wins.
 * Run once with the in-memory cache and once on a real redis-server.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { startSim, startTestGateway, type TestGateway } from '../../helpers/gateway.ts';
import { startRedis, type TestRedis } from '../../helpers/redis.ts';
import { chatBody, dumpRedis, patientCache, postJson, redisSection, simBackend, simModel } from './harness.ts';

let sim: Simulator;
let redis: TestRedis;

beforeAll(async () => {
  [sim, redis] = await Promise.all([startSim({ flavor: 'vllm' }), startRedis()]);
});
afterAll(async () => {
  await Promise.all([sim?.close(), redis?.stop()]);
});

/** Sends the same request three times; returns the x-switchyard-cache headers and the upstream calls made. */
async function repeated(gateway: TestGateway, path: string, body: Record<string, unknown>): Promise<{ headers: Array<string | null>; upstream: number }> {
  const before = sim.stats().requests;
  const headers: Array<string | null> = [];
  for (let index = 0; index < 3; index++) {
    const answer = await postJson(gateway.url, path, body);
    expect(answer.status).toBe(200);
    headers.push(answer.headers.get('x-switchyard-cache'));
  }
  return { headers, upstream: sim.stats().requests - before };
}

describe.each(['memory', 'redis'] as const)('cache.mode precedence (%s cache)', (store) => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startTestGateway({
      backends: [simBackend('sim', sim)],
      models: [simModel('chat', 'sim', sim), simModel('embed', 'sim', sim), simModel('chat-on', 'sim', sim, { cache: { mode: 'deterministic' } })],
      cache: { ...patientCache, mode: 'off' },
      ...(store === 'redis' ? { redis: redisSection(redis.url, { keyPrefix: `p${randomUUID().slice(0, 8)}` }) } : {}),
    });
  });
  afterAll(async () => {
    await gateway?.close();
  });
  const cacheKeys = async () => (await dumpRedis(redis.url)).filter((entry) => entry.key.startsWith(`${gateway.config.redis?.keyPrefix}:cache:`)).length;

  it('global off: repeated temperature-0 chat, stream and embedding requests never HIT and all go upstream', async () => {
    const chat = await repeated(gateway, '/v1/chat/completions', chatBody(`off ${randomUUID()}`));
    expect(chat.headers.every((header) => header !== 'HIT')).toBe(true);
    expect(chat.upstream).toBe(3);
    const stream = await repeated(gateway, '/v1/chat/completions', chatBody(`off stream ${randomUUID()}`, { stream: true }));
    expect(stream.headers.every((header) => header !== 'HIT')).toBe(true);
    expect(stream.upstream).toBe(3);
    const embed = await repeated(gateway, '/v1/embeddings', { model: 'embed', input: `off embed ${randomUUID()}` });
    expect(embed.headers.every((header) => header !== 'HIT')).toBe(true);
    expect(embed.upstream).toBe(3);
    if (store === 'redis') expect(await cacheKeys()).toBe(0);
  });

  it('a per-model mode set explicitly wins over the global off', async () => {
    const on = await repeated(gateway, '/v1/chat/completions', chatBody(`on ${randomUUID()}`, { model: 'chat-on' }));
    expect(on.headers).toEqual(['MISS', 'HIT', 'HIT']);
    expect(on.upstream).toBe(1);
    if (store === 'redis') expect(await cacheKeys()).toBe(1);
  });
});
