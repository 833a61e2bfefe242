/**
 * What each backend's state looks like at scrape time: its cost so far, circuit, runtime load as last scraped,
 * the gateway's queue and in-flight requests for it, its health and the service figures the router learnt. Read
 * at every scrape over the backends of the moment (a config reload may add or remove some).
 */
import { type Aggregator, Counter, Gauge, type Registry } from 'prom-client';
import type { ModelFigures } from '../backends/latency.ts';
import type { Backend, BackendRegistry } from '../backends/registry.ts';
import type { Router } from '../routing/router.ts';

/** `hourlyCost` false leaves the perHour part of the cost out (every cluster worker but one: see Backend.spend). */
export function registerBackendMetrics(registry: Registry, backends: BackendRegistry, router: Router, hourlyCost: boolean): void {
  const registers = [registry];
  const list = () => backends.byId.values();
  new Counter({
    name: 'switchyard_backend_cost_total',
    help: 'What each backend cost: perHour × the time it was seen running, plus per-token charges of answered requests; summed, the fleet cost',
    labelNames: ['backend'],
    registers,
    aggregator: 'sum',
    collect() {
      this.reset();
      const now = Date.now();
      for (const backend of list()) this.inc({ backend: backend.id }, backend.spend(now, hourlyCost));
    },
  });
  const gauge = (name: string, help: string, aggregator: Aggregator, read: (backend: Backend) => number | undefined) =>
    new Gauge({
      name,
      help,
      labelNames: ['backend'],
      registers,
      aggregator,
      collect() {
        this.reset();
        for (const backend of list()) {
          const value = read(backend);
          if (value !== undefined) this.set({ backend: backend.id }, value);
        }
      },
    });
  const circuitValue = { closed: 0, 'half-open': 1, open: 2 } as const;
  gauge('switchyard_backend_circuit_state', 'Circuit breaker per backend: 0 closed, 1 half-open, 2 open', 'max', (backend) => circuitValue[backend.circuit.state]);
  gauge(
    'switchyard_backend_queue_depth',
    'Requests waiting in the runtime queue as last scraped (vLLM num_requests_waiting, llama.cpp requests_deferred)',
    'average',
    (backend) => backend.live.queued,
  );
  gauge('switchyard_backend_running', 'Requests running in the runtime as last scraped', 'average', (backend) => backend.live.running);
  gauge('switchyard_backend_kv_cache_usage_ratio', 'KV-cache use 0..1 as last reported (vLLM)', 'average', (backend) => backend.live.kvCacheUsage);
  gauge('switchyard_backend_gateway_queue_depth', "Requests waiting in the gateway's admission queue for this backend", 'sum', (backend) => router.admission(backend).waiting);
  // A backend serving several models: its most measured model's figures (all of them in /admin/backends).
  const learnt = (read: (figures: ModelFigures) => number | undefined) => (backend: Backend) => read(backend.service.main);
  const fitted = (read: (figures: ModelFigures) => number) => learnt((figures) => (figures.measured ? read(figures) : undefined));
  gauge(
    'switchyard_backend_prefill_base_seconds',
    'Learnt time to first token of a request that does not queue, constant part (prefill fit)',
    'average',
    fitted((figures) => figures.prefill.intercept / 1000),
  );
  gauge(
    'switchyard_backend_prefill_seconds_per_1k_tokens',
    'Learnt time to first token per 1,000 prompt tokens (prefill fit slope)',
    'average',
    fitted((figures) => figures.prefill.slope),
  );
  gauge(
    'switchyard_backend_tpot_seconds',
    'Learnt time per output token of one stream (moving average)',
    'average',
    learnt((figures) => (figures.tpot.value === undefined ? undefined : figures.tpot.value / 1000)),
  );
  gauge(
    'switchyard_backend_capacity_tokens_per_second',
    "Output tokens per second the backend sustains: slots × one slot's speed (prices perHour backends)",
    'average',
    (backend) => backend.capacityTokensPerSecond(),
  );
  new Counter({
    name: 'switchyard_requests_shed_total',
    help: 'Requests refused with 429 because a backend and its queue were full, by priority',
    labelNames: ['backend', 'priority'],
    registers,
    aggregator: 'sum',
    collect() {
      this.reset();
      for (const backend of list()) {
        const shed = router.admission(backend).shed;
        for (const priority of ['high', 'normal', 'low'] as const) this.inc({ backend: backend.id, priority }, shed[priority]);
      }
    },
  });
  new Gauge({
    name: 'switchyard_backend_up',
    help: 'Backend health as last probed (1 up, 0 down or loading)',
    labelNames: ['backend'],
    registers,
    aggregator: 'min',
    collect() {
      for (const backend of list()) this.set({ backend: backend.id }, backend.health === 'up' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'switchyard_backend_inflight',
    help: 'Requests the gateway has in flight to each backend',
    labelNames: ['backend'],
    registers,
    aggregator: 'sum',
    collect() {
      for (const backend of list()) this.set({ backend: backend.id }, backend.inflight);
    },
  });
}
