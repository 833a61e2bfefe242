/**
 * Load as the gateway reads it from real llama-servers (`/props` slots,
 * `/v1/models` n_ctx, the `llamacpp:requests_processing` and
 * `llamacpp:requests_deferred` series), and routing on it: overflow beyond one
 * server's slots goes to the idle server, and no server is handed more than
 * its slots.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { TestGateway } from '../helpers/gateway.ts';
import {
  adminBackends,
  afterStreamCloseMs,
  busySlots,
  Cleanup,
  metrics,
  poll,
  postJson,
  PUBLIC_MODEL,
  readUntil,
  sample,
  SERVER_ALIAS,
  sseEvents,
  startGatewayFor,
  startServers,
} from './helpers/e2e.ts';
import type { LlamaServer } from './helpers/llama-server.ts';

const SLOTS = 2;
const CTX = 4096;
const cleanup = new Cleanup();
let a: LlamaServer;
let b: LlamaServer;
let gateway: TestGateway;

beforeAll(async () => {
  [a, b] = (await startServers(2, { slots: SLOTS, ctx: CTX }, cleanup)) as [LlamaServer, LlamaServer];
  // maxConcurrency = the server's slots: the gateway knows when a server is full and queues beyond that.
  // Scraping stays at the default 1 s.
  gateway = await startGatewayFor({ 'llama-a': a, 'llama-b': b }, cleanup, { backend: { maxConcurrency: SLOTS } });
});

afterAll(() => cleanup.run());

const longChat = (extra: Record<string, unknown> = {}) => ({
  model: PUBLIC_MODEL,
  messages: [{ role: 'user', content: 'Describe every wagon in the yard.' }],
  max_tokens: 3500,
  // the tiny model's EOS is as likely as any other token: without this one stream in ten ends early on its own
  ignore_eos: true,
  stream: true,
  ...extra,
});

/** A long stream that has produced its first content chunk; `stop()` drops it. */
async function openStream(baseUrl: string, path: string, body: unknown): Promise<{ backend: string | null; stop: () => void }> {
  const controller = new AbortController();
  const response = await postJson(baseUrl, path, body, { signal: controller.signal });
  if (response.status !== 200) throw new Error(`stream answered ${response.status}: ${await response.text()}`);
  await readUntil(response, (text) => text.includes('"content":"'));
  return { backend: response.headers.get('x-switchyard-backend'), stop: () => controller.abort() };
}

async function allIdle(): Promise<void> {
  await poll(async () => (await busySlots(a)) === 0 && (await busySlots(b)) === 0, 'both servers idle', 10_000);
}

describe('backend state discovered and scraped from real llama-servers', () => {
  it('shows slots = -np, the per-slot context from /v1/models, and idle runtime figures', async () => {
    // discovery and the first scrape ran before the gateway listened; the scrape repeats every second
    const admin = await adminBackends(gateway);
    for (const id of ['llama-a', 'llama-b']) {
      const backend = admin[id];
      expect(backend?.kind).toBe('llamacpp');
      expect(backend?.health).toBe('up');
      expect(backend?.load.slots).toBe(SLOTS);
      expect(backend?.models).toEqual({ [SERVER_ALIAS]: { contextLength: CTX } });
      expect(backend?.load.runtimeRunning).toBe(0);
      expect(backend?.load.runtimeQueued).toBe(0);
      expect(backend?.load.scrapeError).toBeNull();
      expect(backend?.load.scrapeAgeMs).toBeLessThan(3_000);
      expect(backend?.load.maxConcurrency).toBe(SLOTS);
    }
    const gw = await metrics(gateway.url);
    for (const backend of ['llama-a', 'llama-b']) {
      expect(sample(gw, 'switchyard_backend_running', { backend })).toBe(0);
      expect(sample(gw, 'switchyard_backend_queue_depth', { backend })).toBe(0);
      expect(sample(gw, 'switchyard_backend_up', { backend })).toBe(1);
    }
  });

  it('under load: running = busy slots on each server, in /admin/backends and in the gateway /metrics', async () => {
    const streams = [];
    try {
      for (let index = 0; index < 2 * SLOTS; index++) streams.push(await openStream(gateway.baseURL, '/chat/completions', longChat()));
      // least-loaded with maxConcurrency = slots: two on each
      expect(streams.filter((stream) => stream.backend === 'llama-a')).toHaveLength(SLOTS);
      expect(streams.filter((stream) => stream.backend === 'llama-b')).toHaveLength(SLOTS);
      expect(await busySlots(a)).toBe(SLOTS);
      expect(await busySlots(b)).toBe(SLOTS);
      // the next scrape (≤ 1 s) picks it up; the wait allows for scrapes that time out (800 ms) while both
      // servers generate flat out on a loaded 2-core machine
      await poll(
        async () => {
          const admin = await adminBackends(gateway);
          if (admin['llama-a']?.load.runtimeRunning === SLOTS && admin['llama-b']?.load.runtimeRunning === SLOTS) return true;
          // named in the timeout message
          throw new Error(`a: ${JSON.stringify(admin['llama-a']?.load)}, b: ${JSON.stringify(admin['llama-b']?.load)}`);
        },
        'runtimeRunning = 2 on both backends',
        10_000,
        100,
      );
      const admin = await adminBackends(gateway);
      expect(admin['llama-a']?.load).toMatchObject({ inflight: SLOTS, runtimeQueued: 0, runtimeRunning: SLOTS });
      await poll(
        async () => {
          const gw = await metrics(gateway.url);
          return ['llama-a', 'llama-b'].every((backend) => sample(gw, 'switchyard_backend_running', { backend }) === SLOTS);
        },
        'switchyard_backend_running = 2',
        10_000,
        100,
      );
      const gw = await metrics(gateway.url);
      expect(sample(gw, 'switchyard_backend_inflight', { backend: 'llama-a' })).toBe(SLOTS);
      expect(sample(gw, 'switchyard_backend_queue_depth', { backend: 'llama-a' })).toBe(0);
    } finally {
      for (const stream of streams) stream.stop();
    }
    await allIdle();
    await poll(
      async () => {
        const admin = await adminBackends(gateway);
        return admin['llama-a']?.load.runtimeRunning === 0 && admin['llama-b']?.load.runtimeRunning === 0 && admin['llama-a']?.load.inflight === 0;
      },
      'runtimeRunning back to 0',
      10_000,
      100,
    );
  });

  it("the server's own queue (llamacpp:requests_deferred) shows as runtimeQueued, and new requests go to the idle server", async () => {
    // Another tenant fills llama-a directly: 2 running, 1 deferred inside llama.cpp.
    const direct = { model: 'x', messages: [{ role: 'user', content: 'tenant load' }], max_tokens: 3500, stream: true };
    const tenants = [await openStream(a.url, '/v1/chat/completions', direct), await openStream(a.url, '/v1/chat/completions', direct)];
    const queuedController = new AbortController();
    // this one gets no headers until a slot frees: do not await it
    const queued = postJson(a.url, '/v1/chat/completions', direct, { signal: queuedController.signal }).catch(() => undefined);
    try {
      await poll(async () => sample(await metrics(a.url), 'llamacpp:requests_deferred') === 1, 'llama-a to defer the third request', 5_000, 50);
      await poll(
        async () => {
          const admin = await adminBackends(gateway);
          return admin['llama-a']?.load.runtimeQueued === 1 && admin['llama-a']?.load.runtimeRunning === SLOTS;
        },
        'runtimeQueued = 1 on llama-a',
        10_000,
        100,
      );
      await poll(async () => sample(await metrics(gateway.url), 'switchyard_backend_queue_depth', { backend: 'llama-a' }) === 1, 'queue depth gauge', 10_000, 100);
      expect((await adminBackends(gateway))['llama-a']?.load.inflight).toBe(0); // none of it is the gateway's

      // the gateway has nothing in flight on llama-a, but knows it is full: everything goes to llama-b
      for (let index = 0; index < 4; index++) {
        const response = await postJson(gateway.baseURL, '/chat/completions', { model: PUBLIC_MODEL, messages: [{ role: 'user', content: `q${index}` }], max_tokens: 4 });
        expect(response.status).toBe(200);
        expect(response.headers.get('x-switchyard-backend')).toBe('llama-b');
        await response.text();
        await sleep(afterStreamCloseMs);
      }
    } finally {
      for (const tenant of tenants) tenant.stop();
      queuedController.abort();
      await queued;
    }
    await allIdle();
  });
});

describe('more concurrent requests than one server has slots', () => {
  it('8 streams on 2 servers × 2 slots: both servers used, none ever over its slots, the excess waits in the gateway', async () => {
    await allIdle();
    const samples: Array<{ a: number; b: number; deferredA: number; deferredB: number; gatewayQueue: number; inflightA: number; inflightB: number }> = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [ma, mb, admin] = await Promise.all([metrics(a.url), metrics(b.url), adminBackends(gateway)]);
        samples.push({
          a: sample(ma, 'llamacpp:requests_processing') ?? NaN,
          b: sample(mb, 'llamacpp:requests_processing') ?? NaN,
          deferredA: sample(ma, 'llamacpp:requests_deferred') ?? NaN,
          deferredB: sample(mb, 'llamacpp:requests_deferred') ?? NaN,
          gatewayQueue: (admin['llama-a']?.load.gatewayQueue ?? 0) + (admin['llama-b']?.load.gatewayQueue ?? 0),
          inflightA: admin['llama-a']?.load.inflight ?? NaN,
          inflightB: admin['llama-b']?.load.inflight ?? NaN,
        });
        await new Promise((resolve) => setTimeout(resolve, 30));
      }
    })();
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: 8 }, async (_, index) => {
        const response = await postJson(gateway.baseURL, '/chat/completions', longChat({ max_tokens: 400, messages: [{ role: 'user', content: `wagon ${index}` }] }));
        const events = sseEvents(await response.text());
        return { status: response.status, backend: response.headers.get('x-switchyard-backend'), done: events.at(-1) === '[DONE]' };
      }),
    );
    const elapsed = performance.now() - started;
    sampling = false;
    await sampler;

    expect(results.every((result) => result.status === 200 && result.done)).toBe(true);
    const perBackend = { 'llama-a': 0, 'llama-b': 0 } as Record<string, number>;
    for (const result of results) perBackend[result.backend ?? '']!++;
    expect(perBackend['llama-a']! + perBackend['llama-b']!).toBe(8);
    expect(perBackend['llama-a']).toBeGreaterThanOrEqual(2);
    expect(perBackend['llama-b']).toBeGreaterThanOrEqual(2);

    expect(samples.length, `sampled ${samples.length} times in ${Math.round(elapsed)} ms`).toBeGreaterThan(5);
    // never more than the slots at once, on the server (processing) and in the gateway (in flight)
    expect(Math.max(...samples.map((s) => s.a))).toBeLessThanOrEqual(SLOTS);
    expect(Math.max(...samples.map((s) => s.b))).toBeLessThanOrEqual(SLOTS);
    expect(Math.max(...samples.map((s) => Math.max(s.inflightA, s.inflightB)))).toBeLessThanOrEqual(SLOTS);
    // both were busy at the same time at some point: the overflow went to the other server
    expect(samples.some((s) => s.a === SLOTS && s.b === SLOTS)).toBe(true);
    // the excess waited in the gateway, not in llama.cpp's own queue
    expect(samples.some((s) => s.gatewayQueue > 0)).toBe(true);
    expect(Math.max(...samples.map((s) => Math.max(s.deferredA, s.deferredB)))).toBe(0);
  });
});

describe('a llama-server started without --metrics', () => {
  it('has its running requests read from /slots (its default), also those of other clients', async () => {
    const [plain] = (await startServers(1, { slots: SLOTS, ctx: CTX, metrics: false }, cleanup)) as [LlamaServer];
    const own = await startGatewayFor({ plain }, cleanup, { backend: { maxConcurrency: SLOTS } });
    const idle = (await adminBackends(own)).plain?.load;
    expect(idle).toMatchObject({ runtimeRunning: 0, runtimeQueued: null, scrapeError: null });
    // Streams straight to the server, not through the gateway: only the runtime can tell of them.
    const streams = [];
    try {
      for (let index = 0; index < SLOTS; index++) streams.push(await openStream(plain.url, '/v1/chat/completions', { ...longChat(), model: SERVER_ALIAS }));
      await poll(
        async () => {
          const load = (await adminBackends(own)).plain?.load;
          if (load?.runtimeRunning === SLOTS && load.inflight === 0) return true;
          throw new Error(JSON.stringify(load));
        },
        'runtimeRunning = 2 from /slots',
        10_000,
        100,
      );
      expect((await adminBackends(own)).plain?.load.scrapeError).toBeNull();
    } finally {
      for (const stream of streams) stream.stop();
    }
  });
});
