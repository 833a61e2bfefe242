/**
 * Replicas that act as one on a Redis Cluster (six private redis-server nodes, test/helpers/redis-ha.ts): the slot
 * scripts' keys carry the backend as hash tag, the flight lock is one key, and pub/sub goes through a duplicate of
 * the Cluster client.
 * Two gateways on the cluster, a 2-slot simulator: the limit holds fleet-wide and identical requests go upstream once.
 */
import { randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { startSim, startTestGateway, type TestGateway } from '../../helpers/gateway.ts';
import { patientCache, simBackend, simModel } from './harness.ts';
import { startCluster, type TestCluster } from '../../helpers/redis-ha.ts';

let cluster: TestCluster;
let box: Simulator;
let replicas: TestGateway[] = [];

beforeAll(async () => {
  cluster = await startCluster();
  box = await startSim({ flavor: 'llamacpp', maxConcurrency: 2, ttftMs: 150, tokensPerSecond: 100 });
  const config = {
    backends: [simBackend('box', box, { maxConcurrency: 2, queue: { maxSize: 64, timeoutMs: 20_000 } })],
    models: [simModel('chat', 'box', box)],
    redis: { cluster: { nodes: cluster.nodes.map(({ host, port }) => ({ host, port })) }, commandTimeoutMs: 2_000, connectTimeoutMs: 1_000, startupWaitMs: 5_000 },
    cache: patientCache,
    cluster: { leaseTtlMs: 1_000, pollMs: 20, loadRefreshMs: 50 },
  };
  replicas = await Promise.all([startTestGateway(config), startTestGateway(config)]);
}, 30_000);

afterAll(async () => {
  await Promise.all(replicas.map((gateway) => gateway.close()));
  await box?.close();
  await cluster?.stop();
});

const client = (gateway: TestGateway) => new OpenAI({ baseURL: gateway.baseURL, apiKey: 'test-key', maxRetries: 0, timeout: 20_000 });

describe('replicas acting as one on a Redis Cluster', () => {
  it('hold maxConcurrency across the replicas: 12 concurrent requests, the 2-slot simulator never holds more than 2', async () => {
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, index) =>
        client(replicas[index % 2] as TestGateway).chat.completions.create({
          model: 'chat',
          messages: [{ role: 'user', content: `cluster ${index} ${randomUUID()}` }],
          temperature: 0.7,
          max_tokens: 4,
        }),
      ),
    );
    expect(answers.every((answer) => (answer.choices[0]?.message.content ?? '').length > 0)).toBe(true);
    expect(box.stats().peakHeld).toBe(2);
    for (const gateway of replicas) expect(gateway.logs.some((line) => line.includes('cluster: Redis unreachable'))).toBe(false);
  });

  it('send identical deterministic requests upstream once', async () => {
    const before = box.stats().requests;
    const body = { model: 'chat', messages: [{ role: 'user' as const, content: `cluster same ${randomUUID()}` }], temperature: 0, max_tokens: 4 };
    const answers = await Promise.all([...replicas, ...replicas].map((gateway) => client(gateway).chat.completions.create(body)));
    expect(new Set(answers.map((answer) => answer.choices[0]?.message.content)).size).toBe(1);
    expect(box.stats().requests).toBe(before + 1);
  });
});
