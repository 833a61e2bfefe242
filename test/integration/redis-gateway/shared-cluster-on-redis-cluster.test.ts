/**
 * Replicas that act as one on a Redis Cluster (three private redis-server nodes in cluster mode, slots assigned
 * with CLUSTER ADDSLOTSRANGE and joined with CLUSTER MEET, no redis-cli needed): the slot scripts' keys carry the
 * backend as hash tag, the flight lock is one key, and pub/sub goes through a duplicate of the Cluster client.
 * Two gateways on the cluster, a 2-slot simulator: the limit holds fleet-wide and identical requests go upstream once.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { startSim, startTestGateway, type TestGateway } from '../../helpers/gateway.ts';
import { patientCache, simBackend, simModel } from './harness.ts';
import { freePort } from '../../helpers/ports.ts';

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

interface TestCluster {
  ports: number[];
  stop(): Promise<void>;
}

/** Three masters, 16384 slots split between them. */
async function startCluster(): Promise<TestCluster> {
  const directory = await mkdtemp(join(tmpdir(), 'swy-redis-cluster-'));
  const ports = [await freePort(), await freePort(), await freePort()];
  const children: ChildProcess[] = ports.map((port) =>
    spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(directory, `nodes-${port}.conf`),
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        directory,
        '--loglevel',
        'warning',
      ],
      { stdio: 'ignore' },
    ),
  );
  const admins = ports.map((port) => new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 50 }));
  for (const admin of admins) admin.on('error', () => undefined); // refused until the node listens
  try {
    await until(async () => (await Promise.all(admins.map((admin) => admin.ping()))).every((pong) => pong === 'PONG'), 5_000, 'the nodes to start');
    const ranges: Array<[number, number]> = [
      [0, 5460],
      [5461, 10922],
      [10923, 16383],
    ];
    await Promise.all(admins.map((admin, index) => admin.call('CLUSTER', 'ADDSLOTSRANGE', String(ranges[index]?.[0]), String(ranges[index]?.[1]))));
    for (const port of ports.slice(1)) await admins[0]?.call('CLUSTER', 'MEET', '127.0.0.1', String(port));
    await until(
      async () => (await Promise.all(admins.map((admin) => admin.call('CLUSTER', 'INFO')))).every((info) => String(info).includes('cluster_state:ok')),
      10_000,
      'cluster_state:ok',
    );
  } finally {
    for (const admin of admins) admin.disconnect();
  }
  return {
    ports,
    stop: async () => {
      await Promise.all(
        children.map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) resolve();
              else {
                child.once('exit', () => resolve());
                child.kill('SIGKILL');
              }
            }),
        ),
      );
      await rm(directory, { recursive: true, force: true });
    },
  };
}

let cluster: TestCluster;
let box: Simulator;
let replicas: TestGateway[] = [];

beforeAll(async () => {
  cluster = await startCluster();
  box = await startSim({ flavor: 'llamacpp', maxConcurrency: 2, ttftMs: 150, tokensPerSecond: 100 });
  const config = {
    backends: [simBackend('box', box, { maxConcurrency: 2, queue: { maxSize: 64, timeoutMs: 20_000 } })],
    models: [simModel('chat', 'box', box)],
    redis: { cluster: { nodes: cluster.ports.map((port) => ({ host: '127.0.0.1', port })) }, commandTimeoutMs: 2_000, connectTimeoutMs: 1_000, startupWaitMs: 5_000 },
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
