import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import type { InflightJob } from '../../../src/backends/latency.ts';
import { BackendRegistry, type Route, type Target } from '../../../src/backends/registry.ts';
import { validateConfig } from '../../../src/config/load.ts';
import { Admission } from '../../../src/routing/admission.ts';
import { Router } from '../../../src/routing/router.ts';
import { surfacesPlugin } from '../../../src/surfaces/plugin.ts';

function backendWith(extra: Record<string, unknown> = {}) {
  const config = validateConfig({
    backends: [{ id: 'b', url: 'http://127.0.0.1:9', kind: 'vllm', maxConcurrency: 2, health: { healthyThreshold: 2, unhealthyThreshold: 3 }, ...extra }],
    models: [{ name: 'm', targets: [{ backend: 'b', model: 'm' }] }],
  });
  const registry = new BackendRegistry(config, () => ({ close: async () => undefined }) as never);
  return registry.byId.get('b') as NonNullable<ReturnType<typeof registry.byId.get>>;
}

describe('Backend owns its state', () => {
  it('is the only writer: state is read-only from outside', () => {
    const backend = backendWith();
    expect(() => {
      (backend as unknown as { inflight: number }).inflight = 5;
    }).toThrow(TypeError);
    expect(() => {
      (backend as unknown as { health: string }).health = 'up';
    }).toThrow(TypeError);
    expect(backend.inflight).toBe(0);
    expect(backend.health).toBe('unknown');
  });

  it('runs the health state machine with the configured thresholds', () => {
    const backend = backendWith();
    backend.recordProbe('up', 'HTTP 200', 1);
    expect(backend.health).toBe('up'); // unknown -> up on the first good probe
    backend.recordProbe('down', 'ECONNREFUSED', 2);
    backend.recordProbe('down', 'ECONNREFUSED', 3);
    expect(backend.health).toBe('up'); // 2 of 3 failures
    backend.recordProbe('down', 'ECONNREFUSED', 4);
    expect(backend.health).toBe('down');
    expect(backend.lastError).toBe('ECONNREFUSED');
    backend.recordProbe('up', 'HTTP 200', 5);
    expect(backend.health).toBe('down'); // 1 of 2 successes
    backend.recordProbe('up', 'HTTP 200', 6);
    expect(backend.health).toBe('up');
    expect(backend.healthCheckedAt).toBe(6);
    backend.recordProbe('loading', 'HTTP 503', 7);
    expect(backend.health).toBe('loading');
    backend.markUnreachable('connect ECONNREFUSED');
    expect(backend.health).toBe('down');
  });

  it('hands slots out through admission, never past maxConcurrency, and passes a freed slot to a waiter', async () => {
    const backend = backendWith();
    const admission = new Admission(backend);
    expect(admission.tryAcquire()).toBe(true);
    expect(admission.tryAcquire()).toBe(true);
    expect(admission.tryAcquire()).toBe(false);
    expect(backend.inflight).toBe(2);
    const waiting = admission.acquire('normal', new AbortController().signal);
    admission.release(); // passes over to the waiter without being freed
    await waiting;
    expect(backend.inflight).toBe(2);
    admission.release();
    admission.release();
    expect(backend.inflight).toBe(0);
    backend.freeSlot(); // never below zero
    expect(backend.inflight).toBe(0);
  });

  it('keeps what the runtime said: scrape, failed scrape, load report, discovery', () => {
    const backend = backendWith({ slots: 8 });
    backend.applyScrape({ queued: 3, running: 2, kvCacheUsage: 0.5 }, 10);
    backend.scrapeFailed('HTTP 500');
    expect(backend.live).toMatchObject({ queued: 3, running: 2, kvCacheUsage: 0.5, scrapedAt: 10, scrapeError: 'HTTP 500' });
    backend.applyLoadReport({ queued: 1 }, 20);
    expect(backend.live).toMatchObject({ queued: 1, running: 2, kvCacheUsage: 0.5, scrapedAt: 20 });
    backend.applyDiscovery([{ id: 'm', contextLength: 4096 }], 4, 30);
    expect(backend.live.models.get('m')).toBe(4096);
    expect(backend.live.slots).toBe(8); // config wins over discovery
  });
});

describe('plugins declare what they need', () => {
  it('takes requests of the gateway that ended since the scrape off the runtime counts it routes on', () => {
    const config = validateConfig({
      backends: [{ id: 'b', url: 'http://127.0.0.1:9', kind: 'vllm', maxConcurrency: 8 }],
      models: [{ name: 'm', targets: [{ backend: 'b', model: 'm' }] }],
    });
    const registry = new BackendRegistry(config, () => ({ close: async () => undefined }) as never);
    const backend = registry.byId.get('b') as NonNullable<ReturnType<typeof registry.byId.get>>;
    const router = new Router(registry, () => 1_000);
    const target = (registry.routes.get('m') as Route).targets[0] as Target;
    const plan = () =>
      router.plan(registry.routes.get('m') as Route, {
        policy: 'least-loaded',
        promptTokens: 10,
        maxTokens: 10,
        context: { promptFloor: () => 10, maxTokens: 10, minOutput: 0 },
        affinityKey: undefined,
      });
    // Three of ours sent; the scrape sees them running and one more queued (another client's).
    const jobs = [0, 1, 2].map(() => {
      router.acquire([target], 'normal', { signal: new AbortController().signal });
      return router.started(target, plan());
    });
    backend.applyScrape({ queued: 1, running: 3, kvCacheUsage: undefined }, 1_000);
    expect(router.snapshot(target, 1_000)).toMatchObject({ queued: 1, running: 3 });
    // Two of ours end before the next scrape: the queued one took a slot, the other slot is free.
    const [first, second, third] = jobs as [InflightJob, InflightJob, InflightJob];
    router.release(backend, first);
    router.release(backend, second);
    expect(router.snapshot(target, 1_000)).toMatchObject({ queued: 0, running: 2, inflight: 1 });
    // A scrape sent after they ended says so itself: nothing more is taken off.
    backend.applyScrape({ queued: 0, running: 2, kvCacheUsage: undefined }, 1_000, backend.endedCount);
    expect(router.snapshot(target, 1_000)).toMatchObject({ queued: 0, running: 2 });
    router.release(backend, third);
    expect(router.snapshot(target, 1_000)).toMatchObject({ queued: 0, running: 1, inflight: 0 });
  });

  it('predicts the queue from its requests in sending order, also after one in the middle ended', () => {
    const config = validateConfig({
      backends: [{ id: 'b', url: 'http://127.0.0.1:9', kind: 'vllm', maxConcurrency: 8 }],
      models: [{ name: 'm', targets: [{ backend: 'b', model: 'm' }] }],
    });
    const registry = new BackendRegistry(config, () => ({ close: async () => undefined }) as never);
    const backend = registry.byId.get('b') as NonNullable<ReturnType<typeof registry.byId.get>>;
    let clock = 1_000;
    const router = new Router(registry, () => clock);
    const route = registry.routes.get('m') as Route;
    const target = route.targets[0] as Target;
    const jobs = [0, 1, 2, 3].map(() => {
      clock++;
      router.acquire([target], 'normal', { signal: new AbortController().signal });
      return router.started(
        target,
        router.plan(route, { policy: 'least-loaded', promptTokens: 10, maxTokens: 10, context: { promptFloor: () => 10, maxTokens: 10, minOutput: 0 }, affinityKey: undefined }),
      );
    });
    router.release(backend, jobs[1] as InflightJob); // sent second: the last one takes its place in the collection
    // The runtime reports a queue, so its two running sequences are every slot: the backend is full.
    backend.applyScrape({ queued: 2, running: 2, kvCacheUsage: undefined }, clock, backend.endedCount);
    const ahead = router.snapshot(target, clock).ahead ?? [];
    expect(ahead.map((job) => job.elapsedMs)).toEqual([3, 1, 0]); // sent at 1,001, 1,003 and 1,004
  });

  it('learns the service figures of each model a backend serves apart, sharing its slots', () => {
    // One vLLM serving a small and a large model (two public names, two upstream models).
    const config = validateConfig({
      backends: [{ id: 'b', url: 'http://127.0.0.1:9', kind: 'vllm', maxConcurrency: 8, prior: { ttftMs: 500, tokensPerSecond: 20 } }],
      models: [
        { name: 'small', targets: [{ backend: 'b', model: 'qwen-1b' }] },
        { name: 'large', targets: [{ backend: 'b', model: 'qwen-32b' }] },
      ],
    });
    const registry = new BackendRegistry(config, () => ({ close: async () => undefined }) as never);
    const backend = registry.byId.get('b') as NonNullable<ReturnType<typeof registry.byId.get>>;
    let clock = 1_000;
    const router = new Router(registry, () => clock);
    const routeOf = (name: string) => registry.routes.get(name) as Route;
    const input = { policy: 'fastest' as const, promptTokens: 100, maxTokens: 50, context: { promptFloor: () => 100, maxTokens: 50, minOutput: 0 }, affinityKey: undefined };
    const serve = (name: string, ttftMs: number, tpotMs: number) => {
      const target = routeOf(name).targets[0] as Target;
      router.acquire([target], 'normal', { signal: new AbortController().signal });
      const job = router.started(target, router.plan(routeOf(name), input));
      clock += ttftMs;
      router.feedback(backend, job, { ok: true, backendFault: false, ttftMs, tpotMs, completionTokens: 50 });
      router.release(backend, job);
    };
    for (let index = 0; index < 5; index++) {
      serve('small', 40, 10);
      serve('large', 400, 60);
    }
    const small = router.snapshot(routeOf('small').targets[0] as Target, clock, 100);
    const large = router.snapshot(routeOf('large').targets[0] as Target, clock, 100);
    expect(small.ttftMs).toBeCloseTo(40, 0);
    expect(small.tpotMs).toBeCloseTo(10, 0);
    expect(large.ttftMs).toBeCloseTo(400, 0);
    expect(large.tpotMs).toBeCloseTo(60, 0);
    expect([...backend.service.models.keys()]).toEqual(['qwen-1b', 'qwen-32b']);
    // A model this backend never served is predicted from the prior, not from the others' figures.
    expect(backend.service.of('other').measured).toBe(false);
  });

  it('the surfaces plugin refuses to load without the access plugin', async () => {
    const app = Fastify();
    app.decorate('switchyard', {} as never);
    app.decorate('admitRequest', () => undefined);
    await expect(app.register(surfacesPlugin)).rejects.toThrow(/switchyard-access/);
    await app.close().catch(() => undefined);
  });
});
