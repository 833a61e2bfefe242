/**
 * How two workers' registries merge into the one /metrics view (server.workers): the real GatewayMetrics on two
 * registries, each over its own backends, merged by prom-client's AggregatorRegistry.aggregate exactly as the
 * primary does. Plus the small config helpers of cluster.ts.
 */
import { AggregatorRegistry, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { BackendRegistry } from '../../../src/backends/registry.ts';
import { perWorkerStateWarning, workerAuditPath, workerConfig, workerCount, workersConfigError } from '../../../src/workers.ts';
import { validateConfig } from '../../../src/config/load.ts';
import { GatewayMetrics } from '../../../src/metrics/metrics.ts';
import { newRecord } from '../../../src/proxy/record.ts';
import { Router } from '../../../src/routing/router.ts';
import { metricValue } from '../../helpers/metrics-text.ts';

const raw = {
  backends: [{ id: 'gpu', kind: 'vllm', url: 'http://127.0.0.1:1', cost: { perHour: 3.6 } }],
  models: [{ name: 'chat', targets: [{ backend: 'gpu', model: 'm' }] }],
};
const config = validateConfig(raw, 'test', {});
const opened: BackendRegistry[] = [];

afterEach(async () => {
  await Promise.all(opened.splice(0).map((backends) => backends.close()));
});

/** One worker: its own backends, router and registry. */
function worker(hourlyCost: boolean) {
  const backends = new BackendRegistry(config);
  opened.push(backends);
  const registry = new Registry();
  const metrics = new GatewayMetrics(registry, backends, new Router(backends), undefined, false, hourlyCost);
  const backend = backends.byId.get('gpu');
  if (!backend) throw new Error('no backend');
  return { registry, metrics, backend };
}

function answered(metrics: GatewayMetrics, count: number): void {
  for (let i = 0; i < count; i++) {
    const record = newRecord(`r${i}`, 0);
    Object.assign(record, { model: 'chat', backend: 'gpu', endpoint: 'chat', status: 200 });
    metrics.observe(record, 20);
  }
}

async function merged(...registries: Registry[]): Promise<string> {
  return AggregatorRegistry.aggregate(await Promise.all(registries.map((registry) => registry.getMetricsAsJSON()))).metrics();
}

describe('merging workers’ metrics', () => {
  it('sums counters, histograms and in-flight; keeps up/down at the worst view; averages learnt figures; counts perHour once', async () => {
    const one = worker(true);
    const two = worker(false);
    answered(one.metrics, 3);
    answered(two.metrics, 5);
    // Both see the backend running for an hour (two probes an hour apart); one sees it up, the other down.
    const start = Date.now() - 3_600_000;
    for (const { backend } of [one, two]) {
      backend.recordProbe('up', 'ok', start);
      backend.recordProbe('up', 'ok', start + 3_600_000);
    }
    two.backend.markUnreachable('connect refused');
    expect(one.backend.takeSlot() && one.backend.takeSlot() && two.backend.takeSlot()).toBe(true);
    one.backend.service.of('m').observeDecode(10, 20);
    two.backend.service.of('m').observeDecode(30, 20);
    for (let i = 0; i < 20; i++) two.backend.circuit.onFailure();

    const text = await merged(one.registry, two.registry);
    expect(metricValue(text, 'switchyard_requests_total', { model: 'chat', status_class: '2xx' })).toBe(8);
    expect(metricValue(text, 'switchyard_request_duration_seconds_count', { model: 'chat' })).toBe(8);
    expect(metricValue(text, 'switchyard_request_duration_seconds_bucket', { model: 'chat', le: '0.025' })).toBe(8);
    expect(metricValue(text, 'switchyard_workers')).toBe(2);
    expect(metricValue(text, 'switchyard_backend_inflight', { backend: 'gpu' })).toBe(3);
    expect(metricValue(text, 'switchyard_backend_up', { backend: 'gpu' })).toBe(0);
    expect(metricValue(text, 'switchyard_backend_circuit_state', { backend: 'gpu' })).toBe(2);
    expect(metricValue(text, 'switchyard_backend_tpot_seconds', { backend: 'gpu' })).toBeCloseTo(0.02, 6);
    // 3.6 per hour for one hour, once (worker 2 leaves the hours to worker 1).
    expect(metricValue(text, 'switchyard_backend_cost_total', { backend: 'gpu' })).toBeCloseTo(3.6, 1);
    expect(text).not.toContain('switchyard_process_start_time_seconds');
  });

  it('gives every metric an aggregator prom-client knows', async () => {
    const { registry } = worker(true);
    const known = new Set(['sum', 'first', 'min', 'max', 'average', 'omit']);
    for (const metric of await registry.getMetricsAsJSON()) expect(known, metric.name).toContain(metric.aggregator);
  });
});

describe('cluster config helpers', () => {
  it('names one audit file per worker', () => {
    expect(workerAuditPath('switchyard-audit.jsonl', 2)).toBe('switchyard-audit.worker-2.jsonl');
    expect(workerAuditPath('/var/log/sy.d/audit', 1)).toBe('/var/log/sy.d/audit.worker-1');
    expect(workerAuditPath('/var/log/.audit', 3)).toBe('/var/log/.audit.worker-3');
  });

  it('gives each worker a replica id of its own when one is configured (their leases must not collide)', () => {
    const withId = validateConfig({ ...raw, redis: { url: 'redis://127.0.0.1:6379' }, cluster: { replicaId: 'gw-1' } }, 'test', {});
    expect(workerConfig(withId, 2).cluster.replicaId).toBe('gw-1-w2');
    expect(workerConfig(withId, 3).cluster.replicaId).toBe('gw-1-w3');
    // Without one, each process makes its own (host, pid, random).
    expect(workerConfig(config, 2).cluster.replicaId).toBeUndefined();
    expect(workerConfig(config, 2)).toBe(config);
  });

  it('warns about per-worker limits only with several workers and no Redis', () => {
    expect(perWorkerStateWarning(config, 1)).toBeUndefined();
    expect(perWorkerStateWarning(config, 4)).toMatch(/per worker/);
    const withRedis = validateConfig({ ...raw, redis: { url: 'redis://127.0.0.1:6379' } }, 'test', {});
    expect(perWorkerStateWarning(withRedis, 4)).toBeUndefined();
  });

  it('refuses port 0 for both listeners, and resolves auto to the core count', () => {
    const both = validateConfig({ ...raw, admin: { port: 0 } }, 'test', {});
    expect(workersConfigError(both, 0)).toMatch(/fixed port/);
    expect(workersConfigError(both, 8080)).toBeUndefined();
    expect(workerCount(3)).toBe(3);
    expect(workerCount('auto')).toBeGreaterThanOrEqual(1);
    expect(validateConfig({ ...raw, server: { workers: 'auto' } }, 'test', {}).server.workers).toBe('auto');
    expect(() => validateConfig({ ...raw, server: { workers: 0 } }, 'test', {})).toThrow(/server\.workers/);
  });
});
