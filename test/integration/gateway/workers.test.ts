/**
 * `server.workers: 2`: the real `switchyard serve` command as a child process (node:cluster primary + two
 * workers) in front of a simulator, driven with the openai SDK. Both workers serve; /metrics on the admin
 * listener is one merged view (the request counter equals the requests sent, whichever worker answered the
 * scrape); a worker killed with SIGKILL is replaced and requests succeed afterwards with the counters kept;
 * SIGTERM on the primary lets an in-flight stream finish to [DONE] and the primary exits 0.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../../src/limits/key-admin.ts';
import { RedisKeyStore } from '../../../src/limits/key-store.ts';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { startSim, waitFor } from '../../helpers/gateway.ts';
import { metricValue } from '../../helpers/metrics-text.ts';
import { freePort } from '../../helpers/prometheus.ts';
import { sseEvents } from '../../helpers/sse.ts';
import { startRedis, type TestRedis } from '../../helpers/redis.ts';
import { awayFromMinuteBoundary, type GatewayProcess, redisSection, simBackend, simModel, startGatewayProcess } from '../redis-gateway/harness.ts';

let sim: Simulator;
let gateway: GatewayProcess;
let adminUrl: string;
let sent = 0;

/** The JSON log lines (workers' and primary's) the gateway printed so far. */
function logLines(): Array<Record<string, unknown>> {
  return gateway.logs.flatMap((line) => {
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

/** Which worker wrote each `request completed` line for the chat model. */
function servedBy(): number[] {
  return logLines()
    .filter((line) => line.msg === 'request completed' && line.model === 'chat')
    .map((line) => line.worker as number);
}

/** A fresh client (fresh connections, so the primary spreads them over the workers); no SDK retries hide a failure. */
function client(): OpenAI {
  return new OpenAI({ baseURL: gateway.baseURL, apiKey: 'unused', maxRetries: 0, timeout: 15_000 });
}

async function ask(openai: OpenAI, index: number): Promise<string> {
  sent++;
  const answer = await openai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: `Question ${index}` }], max_tokens: 4 });
  return answer.choices[0]?.message.content ?? '';
}

/** GET /metrics on the admin listener over a new connection each time, so successive scrapes reach different workers. */
function scrape(): Promise<string> {
  return new Promise((resolve, reject) => {
    get(`${adminUrl}/metrics`, { agent: false }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => (response.statusCode === 200 ? resolve(text) : reject(new Error(`/metrics answered ${response.statusCode}: ${text}`))));
    }).on('error', reject);
  });
}

describe('server.workers: 2 (switchyard serve as a child process)', () => {
  beforeAll(async () => {
    sim = await startSim({ flavor: 'vllm', model: 'sim-model' });
    const adminPort = await freePort();
    gateway = await startGatewayProcess(
      {
        server: { host: '127.0.0.1', port: 0, workers: 2, shutdownGraceMs: 10_000 },
        admin: { port: adminPort },
        backends: [simBackend('sim', sim)],
        models: [simModel('chat', 'sim', sim)],
      },
      30_000,
    );
    adminUrl = `http://127.0.0.1:${adminPort}`;
  }, 40_000);

  afterAll(async () => {
    await gateway?.close();
    await sim?.close();
  });

  it('starts two workers behind one port, says so once, and warns that limits and cache are per worker without Redis', async () => {
    // Worker lines are batched (every 250 ms): they may trail the primary's.
    await waitFor(() => logLines().filter((line) => line.msg === 'worker listening').length === 2, 5_000, 'both workers to log');
    const lines = logLines();
    expect(lines.filter((line) => line.msg === 'worker listening').map((line) => line.worker)).toEqual(expect.arrayContaining([1, 2]));
    expect(lines.filter((line) => line.msg === 'switchyard listening')).toHaveLength(1);
    expect(lines.find((line) => line.msg === 'switchyard listening')).toMatchObject({ role: 'primary', workers: 2 });
    expect(lines.some((line) => line.level === 40 && String(line.msg).includes('per worker'))).toBe(true);
  });

  it('spreads requests over both workers, and /metrics on either worker is the merged total', async () => {
    // Concurrent requests open several connections; the primary hands connections to workers in turn.
    for (let round = 0; round < 3 && new Set(servedBy()).size < 2; round++) {
      const openai = client();
      const answers = await Promise.all(Array.from({ length: 12 }, (_, index) => ask(openai, index)));
      expect(answers.every((text) => text.length > 0)).toBe(true);
      await waitFor(() => servedBy().length === sent, 5_000, 'a log line per request');
    }
    expect(new Set(servedBy())).toEqual(new Set([1, 2]));
    // Several scrapes land on both workers (each scrape is a new connection): every one shows the whole cluster.
    for (let i = 0; i < 4; i++) {
      const text = await scrape();
      expect(metricValue(text, 'switchyard_requests_total', { model: 'chat', status_class: '2xx' })).toBe(sent);
      expect(metricValue(text, 'switchyard_request_duration_seconds_count', { model: 'chat' })).toBe(sent);
      expect(metricValue(text, 'switchyard_workers')).toBe(2);
      expect(metricValue(text, 'switchyard_backend_up', { backend: 'sim' })).toBe(1);
      expect(metricValue(text, 'switchyard_backend_inflight', { backend: 'sim' })).toBe(0);
    }
  });

  it('a config reload reaches every worker: SIGHUP on the primary, or POST /admin/reload on any one of them', async () => {
    const reloadedBy = () =>
      logLines()
        .filter((line) => line.msg === 'config reloaded')
        .map((line) => line.worker as number);
    const listed = async () => {
      // fresh connections: successive lists come from both workers
      const ids = await Promise.all(Array.from({ length: 4 }, async () => (await client().models.list()).data.map((model) => model.id)));
      return ids;
    };
    const config = JSON.parse(readFileSync(gateway.file, 'utf8')) as { models: unknown[] };
    writeFileSync(gateway.file, JSON.stringify({ ...config, models: [...config.models, simModel('chat2', 'sim', sim)] }));
    gateway.child.kill('SIGHUP');
    await waitFor(() => reloadedBy().length === 2, 10_000, 'both workers to reload on SIGHUP');
    expect(new Set(reloadedBy())).toEqual(new Set([1, 2]));
    for (const ids of await listed()) expect(ids).toEqual(['chat', 'chat2']);

    writeFileSync(gateway.file, JSON.stringify({ ...config, models: [...config.models, simModel('chat3', 'sim', sim)] }));
    const response = await fetch(`${adminUrl}/admin/reload`, { method: 'POST' });
    expect(response.status).toBe(200);
    await waitFor(() => reloadedBy().length === 4, 10_000, 'the other worker to follow the admin reload');
    expect(reloadedBy().slice(2).sort()).toEqual([1, 2]);
    for (const ids of await listed()) expect(ids).toEqual(['chat', 'chat3']);
  });

  it('restarts a worker killed with SIGKILL; requests succeed afterwards and the merged counters keep its requests', async () => {
    const before = await scrape();
    const victim = logLines().find((line) => line.msg === 'worker listening' && line.worker === 2)?.pid as number;
    expect(victim).toBeGreaterThan(0);
    process.kill(victim, 'SIGKILL');
    await waitFor(() => logLines().some((line) => line.msg === 'worker died unexpectedly: restarting it' && line.pid === victim), 5_000, 'the primary to see the death');
    await waitFor(() => logLines().some((line) => line.msg === 'worker restarted and listening'), 20_000, 'the replacement to listen');
    const replacement = logLines().find((line) => line.msg === 'worker restarted and listening')?.pid as number;
    expect(replacement).not.toBe(victim);
    // The replacement dies young too: the next restart waits twice as long (a crash loop backs off).
    process.kill(replacement, 'SIGKILL');
    await waitFor(() => logLines().some((line) => line.msg === 'worker died unexpectedly: restarting it' && line.pid === replacement), 5_000, 'the second death');
    const deaths = logLines().filter((line) => line.msg === 'worker died unexpectedly: restarting it');
    expect(deaths.map((line) => line.restartInMs)).toEqual([100, 200]);
    await waitFor(() => logLines().filter((line) => line.msg === 'worker restarted and listening').length === 2, 20_000, 'the second replacement to listen');

    const previous = servedBy().length;
    const sentBefore = sent;
    // The replacement (worker 2 again) takes its share. The primary hands each new connection to a free worker, so
    // on a loaded machine one round of 12 may all land on worker 1: up to 5 rounds, each on fresh connections.
    for (let round = 0; round < 5 && !servedBy().slice(previous).includes(2); round++) {
      const openai = client();
      const results = await Promise.allSettled(Array.from({ length: 12 }, (_, index) => ask(openai, 100 + 12 * round + index)));
      expect(results.filter((result) => result.status === 'rejected')).toEqual([]);
      await waitFor(() => servedBy().length === sent, 5_000, 'a log line per request');
    }
    expect(servedBy().slice(previous)).toContain(2);

    const after = await scrape();
    expect(metricValue(before, 'switchyard_requests_total', { model: 'chat', status_class: '2xx' })).toBe(sentBefore);
    expect(metricValue(after, 'switchyard_requests_total', { model: 'chat', status_class: '2xx' })).toBe(sent);
    expect(metricValue(after, 'switchyard_workers')).toBe(2);
  }, 60_000);

  it('SIGTERM on the primary: an in-flight stream finishes to [DONE], the workers drain and the primary exits 0', async () => {
    // A slow stream: 30 tokens at 40 tokens per second, about 0.75 s.
    sim.update({ tokensPerSecond: 40 });
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', stream: true, max_tokens: 30, messages: [{ role: 'user', content: 'Stream through the shutdown.' }] }),
    });
    expect(response.status).toBe(200);
    const reader = response.body?.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes('data: ')) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => gateway.child.once('exit', (code, signal) => resolve({ code, signal })));
    gateway.child.kill('SIGTERM');
    expect(text).not.toContain('[DONE]');
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    const events = sseEvents(text);
    expect(events.at(-1)).toBe('[DONE]');
    expect(JSON.stringify(events)).not.toContain('server_shutting_down');
    const finish = events.flatMap((event) => (typeof event === 'object' && event !== null ? ((event as { choices?: Array<{ finish_reason?: string }> }).choices ?? []) : []));
    expect(finish.some((choice) => choice.finish_reason === 'length' || choice.finish_reason === 'stop')).toBe(true);
    expect(await exited).toEqual({ code: 0, signal: null });
    const lines = logLines();
    expect(lines.filter((line) => line.msg === 'shutdown complete').map((line) => line.worker)).toEqual(expect.arrayContaining([1, 2]));
    expect(lines.find((line) => line.msg === 'all workers exited')).toMatchObject({ role: 'primary', failures: 0 });
  }, 30_000);
});

describe('server.workers: 2 on Redis', () => {
  let redis: TestRedis;
  let redisSim: Simulator;
  let shared: GatewayProcess;
  let secret = '';
  const rpm = 6;

  beforeAll(async () => {
    redis = await startRedis();
    redisSim = await startSim({ flavor: 'vllm', model: 'sim-model' });
    const admin = new Redis(redis.url);
    secret = (await createKey(new RedisKeyStore(admin, 'swy'), { id: 'workers-rpm', tenant: 'ops', rpm })).secret;
    admin.disconnect();
    shared = await startGatewayProcess(
      {
        server: { host: '127.0.0.1', port: 0, workers: 2, shutdownGraceMs: 2_000 },
        backends: [simBackend('sim', redisSim)],
        models: [simModel('chat', 'sim', redisSim)],
        redis: redisSection(redis.url),
        auth: { mode: 'keys' },
      },
      30_000,
    );
  }, 40_000);

  afterAll(async () => {
    await shared?.close();
    await redisSim?.close();
    await redis?.stop();
  });

  it('holds one requests-per-minute limit across both workers, and does not warn about per-worker limits', async () => {
    await awayFromMinuteBoundary();
    const openai = new OpenAI({ baseURL: shared.baseURL, apiKey: secret, maxRetries: 0, timeout: 15_000 });
    const results = await Promise.allSettled(
      Array.from({ length: rpm + 4 }, (_, index) => openai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: `limit ${index}` }], max_tokens: 4 })),
    );
    const refused = results.filter((result) => result.status === 'rejected').map((result) => (result.reason as { status?: number }).status);
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(rpm);
    expect(refused).toEqual([429, 429, 429, 429]);
    const lines = shared.logs.flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
    await waitFor(() => shared.logs.filter((line) => line.includes('"msg":"request completed"')).length === rpm + 4, 5_000, 'a log line per request');
    const served = shared.logs.flatMap((line) => (line.includes('"msg":"request completed"') ? [(JSON.parse(line) as { worker: number }).worker] : []));
    expect(new Set(served)).toEqual(new Set([1, 2]));
    expect(lines.some((line) => String(line.msg).includes('per worker'))).toBe(false);
  });
});

describe('server.workers: 2, a worker that cannot start', () => {
  it('stops the gateway with exit 1 instead of restarting it (the port is taken)', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const started = startGatewayProcess(
        {
          server: { host: '127.0.0.1', port, workers: 2 },
          backends: [{ id: 'sim', kind: 'vllm', url: 'http://127.0.0.1:9' }],
          models: [{ name: 'chat', targets: [{ backend: 'sim', model: 'm' }] }],
        },
        20_000,
      );
      await expect(started).rejects.toThrow(/exited with 1[\s\S]*before it listened/);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  }, 30_000);
});

describe('server.workers: 2, the primary killed outright', () => {
  it('its workers notice, drain and exit (no orphans serving unsupervised)', async () => {
    const orphanSim = await startSim({ flavor: 'vllm', model: 'sim-model' });
    const process2 = await startGatewayProcess(
      {
        server: { host: '127.0.0.1', port: 0, workers: 2, shutdownGraceMs: 2_000 },
        backends: [simBackend('sim', orphanSim)],
        models: [simModel('chat', 'sim', orphanSim)],
      },
      30_000,
    );
    try {
      const pids = () =>
        process2.logs.flatMap((line) => {
          if (!line.includes('"msg":"worker listening"')) return [];
          const pid = (JSON.parse(line) as { pid?: number }).pid;
          return pid ? [pid] : [];
        });
      await waitFor(() => pids().length === 2, 5_000, 'both workers to log');
      const alive = (pid: number) => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      expect(pids().every(alive)).toBe(true);
      process2.child.kill('SIGKILL');
      await waitFor(() => !pids().some(alive), 10_000, 'the workers to exit');
    } finally {
      await process2.close();
      await orphanSim.close();
    }
  }, 40_000);
});
