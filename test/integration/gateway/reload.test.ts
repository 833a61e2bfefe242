/**
 * Config hot reload (POST /admin/reload and SIGHUP) under traffic: backends and
 * models appear and go, a removed backend finishes what it holds, a staying
 * backend keeps what it learnt, an invalid file changes nothing, and no client
 * request fails across it all.
 */
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import OpenAI from 'openai';
import { Registry as PromRegistry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { verifyFiles } from '../../../src/audit/verify.ts';
import { loadConfigFile } from '../../../src/config/load.ts';
import { createLogger } from '../../../src/logging.ts';
import { type RunningGateway, reloadOnSighup, startGateway } from '../../../src/server.ts';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { closedAfterEach, startSim, waitFor } from '../../helpers/gateway.ts';

const dir = mkdtempSync(join(tmpdir(), 'swy-reload-'));
const file = join(dir, 'switchyard.yaml');
const auditFile = join(dir, 'audit.jsonl');
const hmacKey = 'reload-test-audit-key-0123456789abcdef';
let simA: Simulator;
let simB: Simulator;
let gateway: RunningGateway;
let client: OpenAI;
const logs: string[] = [];

const backendA = () => ({ id: 'a', kind: 'vllm', url: simA.url });
const backendB = () => ({ id: 'b', kind: 'llamacpp', url: simB.url });
const target = (backend: string) => ({ backend, model: backend === 'a' ? 'Qwen/Qwen3-8B' : 'qwen3-8b-q4' });

function writeConfig(extra: { backends: unknown[]; models: unknown[]; server?: Record<string, unknown> }): void {
  const config = {
    server: { host: '127.0.0.1', port: 0, ...extra.server },
    logging: { level: 'info' },
    audit: { enabled: true, path: auditFile, hmacKey, flushIntervalMs: 20 },
    backends: extra.backends,
    models: extra.models,
  };
  writeFileSync(file, stringify(config));
}

async function reload(): Promise<{ status: number; body: Record<string, any> }> {
  const response = await fetch(`${gateway.url}/admin/reload`, { method: 'POST' });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

async function admin(): Promise<Record<string, any>> {
  return (await (await fetch(`${gateway.url}/admin/backends`)).json()) as Record<string, any>;
}

/** Clients sending one request after another (half of them streamed) until stopped; every failure is kept. */
function traffic(models: () => string[], clients = 6) {
  let running = true;
  let sent = 0;
  const failures: string[] = [];
  const loops = Array.from({ length: clients }, async (_, index) => {
    while (running) {
      const list = models();
      const model = list[(sent + index) % list.length] as string;
      sent++;
      try {
        if (index % 2 === 0) {
          const answer = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 });
          if (!answer.choices[0]?.message.content) failures.push(`${model}: empty answer`);
        } else {
          const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 8, stream: true });
          let text = '';
          for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
          if (!text) failures.push(`${model}: empty stream`);
        }
      } catch (error) {
        failures.push(`${model}: ${(error as Error).message}`);
      }
    }
  });
  return {
    failures,
    sent: () => sent,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

beforeAll(async () => {
  // ~0.3 s per answer: requests are in flight on a backend when it is removed
  simA = await startSim({ flavor: 'vllm', tokensPerSecond: 30 });
  simB = await startSim({ flavor: 'llamacpp', tokensPerSecond: 30, maxConcurrency: 8 });
  writeConfig({ backends: [backendA()], models: [{ name: 'm1', targets: [target('a')] }] });
  const config = loadConfigFile(file);
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      callback();
    },
  });
  gateway = await startGateway(config, { configFile: file, port: 0, host: '127.0.0.1', logger: createLogger(config, sink), promRegistry: new PromRegistry() });
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 15_000 });
});

afterAll(async () => {
  await gateway?.shutdown('test done');
  await Promise.all([simA?.close(), simB?.close()]);
  rmSync(dir, { recursive: true, force: true });
});

describe('config reload under traffic', () => {
  it('adds, updates and removes backends and models without a failed request; an invalid file changes nothing', async () => {
    let models = ['m1'];
    const load = traffic(() => models);
    await waitFor(() => simA.stats().completed >= 6, 5_000, 'traffic on a');
    const before = (await admin()).backends.find((backend: { id: string }) => backend.id === 'a');
    expect(before.latency.measured).toBe(true);

    // 1. a second backend and a second model appear; `a` stays with what it learnt
    writeConfig({
      backends: [backendA(), backendB()],
      models: [
        { name: 'm1', targets: [target('a'), target('b')] },
        { name: 'm2', targets: [target('b')] },
      ],
    });
    const added = await reload();
    expect(added.status).toBe(200);
    expect(added.body).toMatchObject({ status: 'reloaded', backends: { added: ['b'], removed: [], updated: [] }, models: 2, restartRequired: [] });
    const afterAdd = (await admin()).backends;
    expect(afterAdd.map((backend: { id: string }) => backend.id)).toEqual(['a', 'b']);
    // probed before the reload answered
    expect(afterAdd[1].health).toBe('up');
    const keptA = afterAdd[0];
    expect(keptA.latency.measured).toBe(true);
    expect(keptA.circuit).toEqual(before.circuit);
    models = ['m1', 'm2'];
    await waitFor(() => simB.stats().completed >= 6, 5_000, 'traffic on b');
    const listed = await client.models.list();
    expect(listed.data.map((model) => model.id)).toEqual(['m1', 'm2']);

    // 2. an invalid file is refused with each problem named; the running config stays
    writeFileSync(file, readFileSync(file, 'utf8').replace(/backend: b/g, 'backend: nowhere'));
    const refused = await reload();
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ type: 'invalid_request_error', code: 'config_invalid' });
    expect(refused.body.error.message).toMatch(/models\[\d\]\.targets\[\d\]\.backend/);
    expect(refused.body.error.message).toContain('nowhere');
    expect((await client.models.list()).data.map((model) => model.id)).toEqual(['m1', 'm2']);

    // 3. `a` is removed while requests are in flight on it: they finish; nothing new goes there
    writeConfig({
      backends: [{ ...backendB(), maxConcurrency: 16 }],
      models: [
        { name: 'm1', targets: [target('b')] },
        { name: 'm2', targets: [target('b')] },
      ],
    });
    await waitFor(() => simA.stats().running > 0, 3_000, 'a request running on a');
    const removed = await reload();
    expect(removed.status).toBe(200);
    expect(removed.body.backends).toEqual({ added: [], removed: ['a'], updated: ['b'] });
    const settledOnA = simA.stats().requests;
    await waitFor(async () => (await admin()).draining.length === 0, 5_000, 'a drained');
    const onBBefore = simB.stats().completed;
    await waitFor(() => simB.stats().completed >= onBBefore + 12, 5_000, 'more traffic on b');
    expect(simA.stats().requests).toBe(settledOnA);
    const current = (await admin()).backends;
    expect(current.map((backend: { id: string }) => backend.id)).toEqual(['b']);
    expect(current[0].load.maxConcurrency).toBe(16);

    await load.stop();
    expect(load.failures).toEqual([]);
    expect(load.sent()).toBeGreaterThan(40);
  });

  it('SIGHUP reloads the same way; sections bound at startup are named, not applied', async () => {
    reloadOnSighup(gateway);
    writeConfig({
      backends: [backendB()],
      models: [
        { name: 'm1', targets: [target('b')] },
        { name: 'm3', targets: [target('b')] },
      ],
      server: { bodyLimitBytes: 1024 },
    });
    try {
      process.emit('SIGHUP', 'SIGHUP');
      await waitFor(async () => (await client.models.list()).data.some((model) => model.id === 'm3'), 5_000, 'm3 listed');
    } finally {
      process.removeAllListeners('SIGHUP');
    }
    expect((await client.chat.completions.create({ model: 'm3', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 })).choices[0]?.message.content).toBeTruthy();
    // the running body limit stays: a body over the new limit is still accepted
    const big = await client.chat.completions.create({ model: 'm1', messages: [{ role: 'user', content: 'x'.repeat(4_000) }], max_tokens: 4 });
    expect(big.choices[0]?.message.content).toBeTruthy();
    const line = logs.map((text) => JSON.parse(text) as Record<string, unknown>).find((entry) => entry.msg === 'config reload: these changes take effect after a restart');
    expect(line?.sections).toEqual(['server']);
  });

  it('every reload is a record in the audit chain, which still verifies', async () => {
    await waitFor(
      () =>
        readFileSync(auditFile, 'utf8')
          .split('\n')
          .filter((text) => text.includes('"config.reload"')).length >= 3,
      3_000,
      'reload records',
    );
    const records = readFileSync(auditFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((text) => JSON.parse(text) as Record<string, unknown>)
      .filter((record) => record.action === 'config.reload');
    expect(records[0]?.detail).toContain('added b');
    expect(records.some((record) => String(record.detail).includes('removed a'))).toBe(true);
    expect(records.at(-1)?.detail).toContain('after restart: server');
    expect(verifyFiles([auditFile], hmacKey).ok).toBe(true);
  });
});

describe('config reload without a config file', () => {
  const closed = closedAfterEach();

  it('answers 409 reload_unavailable', async () => {
    const sim = await closed.sim({ flavor: 'vllm' });
    const embedded = await closed.gateway({ backends: [{ id: 'a', kind: 'vllm', url: sim.url }], models: [{ name: 'm', targets: [{ backend: 'a', model: 'Qwen/Qwen3-8B' }] }] });
    const response = await fetch(`${embedded.url}/admin/reload`, { method: 'POST' });
    expect(response.status).toBe(409);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('reload_unavailable');
  });
});

describe('server.watchConfig', () => {
  it('reloads when the file changes, also when it is replaced by rename as editors and ConfigMaps do; a broken save changes nothing', async () => {
    const sim = await startSim({ flavor: 'vllm' });
    const watched = join(dir, 'watched.yaml');
    const write = (models: string[], target = watched) =>
      writeFileSync(
        target,
        stringify({
          server: { host: '127.0.0.1', port: 0, watchConfig: true },
          backends: [{ id: 'a', kind: 'vllm', url: sim.url }],
          models: models.map((name) => ({ name, targets: [{ backend: 'a', model: 'Qwen/Qwen3-8B' }] })),
        }),
      );
    write(['w1']);
    const config = loadConfigFile(watched);
    const watching = await startGateway(config, {
      configFile: watched,
      port: 0,
      host: '127.0.0.1',
      logger: createLogger(config, new Writable({ write: (_chunk, _encoding, callback) => callback() })),
      promRegistry: new PromRegistry(),
    });
    const openai = new OpenAI({ baseURL: `${watching.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const ids = async () => (await openai.models.list()).data.map((model) => model.id);
    try {
      write(['w1', 'w2']);
      await waitFor(async () => (await ids()).includes('w2'), 5_000, 'w2 after an in-place write');
      writeFileSync(watched, 'models: [unclosed');
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(await ids()).toEqual(['w1', 'w2']);
      const staged = join(dir, '.watched.yaml.tmp');
      write(['w3'], staged);
      renameSync(staged, watched);
      await waitFor(async () => (await ids()).includes('w3'), 5_000, 'w3 after a rename');
      expect(await ids()).toEqual(['w3']);
    } finally {
      await watching.shutdown('test done');
      await sim.close();
    }
  });
});
