/**
 * Every Prometheus metric Switchyard exports, defined in one place on the
 * registry given. Label values are bounded: models and backends come from
 * config only. README's metric table is checked against this registry.
 *
 * Metrics recorded on every request are FastCounter / FastHistogram (see
 * fast.ts): exposed exactly like prom-client's, but a record is a Map lookup
 * and an add. Rare ones (failovers, cancels, stream errors, cache and Redis
 * errors) stay plain prom-client.
 *
 * With server.workers > 1 a scrape merges every worker's registry (see
 * cluster.ts) by each metric's `aggregator`: counters and histograms are
 * summed (FastCounter / FastHistogram always sum), and every gauge says how
 * its per-worker values combine: `sum` for what each worker holds a share of
 * (requests in flight, its admission queue), `average` for figures about the
 * backend that each worker measures on its own (learnt latencies, the
 * runtime's queue as scraped), `min` / `max` for states where the worst view
 * counts (Redis and backend up: up only if every worker sees it up; circuit
 * state: the most open one).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { ClusterState } from '../cluster/cluster.ts';
import { registerClusterMetrics } from '../cluster/metrics.ts';
import { collectDefaultMetrics, Counter, Gauge, type Registry } from 'prom-client';
import { registerBackendMetrics } from './backend-gauges.ts';
import { FastCounter, FastHistogram } from './fast.ts';
import type { BackendRegistry } from '../backends/registry.ts';
import type { RedisClient } from '../redis/client.ts';
import type { Router } from '../routing/router.ts';
import type { RequestRecord } from '../proxy/record.ts';
import type { ErrorName } from '../errors.ts';

/** Buckets for LLM latencies: 10 ms to 120 s. */
export const latencyBuckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120];
const tokenTimeBuckets = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.3, 0.6, 1.2, 2.5];
const overheadBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];

/** Errors by which the gateway itself refuses a request (auth, limits, admission); an upstream's 429 is not one. */
const refusals: ReadonlySet<ErrorName> = new Set<ErrorName>([
  'SWY_ERR_INVALID_API_KEY',
  'SWY_ERR_MODEL_NOT_ALLOWED',
  'SWY_ERR_RATE_LIMIT_REQUESTS',
  'SWY_ERR_RATE_LIMIT_TOKENS',
  'SWY_ERR_INSUFFICIENT_QUOTA',
  'SWY_ERR_OVERLOADED',
  'SWY_ERR_LIMITS_UNAVAILABLE',
  'SWY_ERR_AUTH_UNAVAILABLE',
  'SWY_ERR_ADMIN_TOKEN',
  'SWY_ERR_ADMIN_DISABLED',
]);

const statusClasses = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx', '6xx', '7xx', '8xx', '9xx'];

function statusClass(status: number): string {
  if (status === 499) return 'cancelled';
  const hundreds = Math.floor(status / 100);
  return statusClasses[hundreds] ?? `${hundreds}xx`;
}

/** The gateway's metrics, recorded from request records and backend state. */
export class GatewayMetrics {
  readonly requests: FastCounter;
  readonly duration: FastHistogram;
  readonly ttft: FastHistogram;
  readonly tpot: FastHistogram;
  readonly overhead: FastHistogram;
  readonly tokens: FastCounter;
  readonly failovers: Counter<'model' | 'backend' | 'reason'>;
  readonly cancelled: Counter<'model' | 'backend'>;
  readonly streamErrors: Counter<'model' | 'backend' | 'code'>;
  readonly decisions: FastCounter;
  readonly cost: FastCounter;
  readonly cacheResults: FastCounter;
  readonly cacheErrors: Counter<'operation' | 'reason'>;
  readonly limitErrors: Counter<'limiter' | 'operation'>;
  readonly guardFindings: Counter<'category' | 'action'>;
  readonly refused: FastCounter;
  readonly errors: FastCounter;

  /** Per-tenant tokens and cost, only when the operator opts in (metrics.tenantLabels). */
  readonly tenantTokens: FastCounter | undefined;
  readonly tenantCost: FastCounter | undefined;
  /** Actual TTFT / the router's prediction, per backend (see routing/predict.ts). */
  readonly prediction: FastHistogram;
  private readonly backends: BackendRegistry;
  private readonly registry: Registry;

  /**
   * `hourlyCost`: whether this process counts the perHour part of switchyard_backend_cost_total (one worker does,
   * so the merged sum counts each backend's hours once; every worker counts its own per-token charges).
   */
  constructor(registry: Registry, backends: BackendRegistry, router: Router, redis?: RedisClient, tenantLabels = false, hourlyCost = true, cluster?: ClusterState) {
    const registers = [registry];
    if (cluster) registerClusterMetrics(registry, cluster, backends, router);
    this.registry = registry;
    collectDefaultMetrics({ register: registry, prefix: 'switchyard_' });
    new Gauge({
      name: 'switchyard_workers',
      help: 'Gateway processes whose metrics this scrape holds (server.workers; 1 for a single process)',
      registers,
      aggregator: 'sum',
    }).set(1);
    this.requests = new FastCounter({
      name: 'switchyard_requests_total',
      help: 'Requests answered, by public model, backend, endpoint, status class and cache result',
      labelNames: ['model', 'backend', 'endpoint', 'status_class', 'cache'],
      registers,
    });
    this.duration = new FastHistogram({
      name: 'switchyard_request_duration_seconds',
      help: 'Time from request arrival to the end of the answer',
      labelNames: ['model', 'backend', 'stream'],
      buckets: latencyBuckets,
      registers,
    });
    this.ttft = new FastHistogram({
      name: 'switchyard_time_to_first_token_seconds',
      help: 'Time from request arrival to the first chunk of a streamed answer from the backend (streamed upstream answers only)',
      labelNames: ['model', 'backend'],
      buckets: latencyBuckets,
      registers,
    });
    this.tpot = new FastHistogram({
      name: 'switchyard_time_per_output_token_seconds',
      help: 'Time per output token after the first one',
      labelNames: ['model', 'backend'],
      buckets: tokenTimeBuckets,
      registers,
    });
    this.overhead = new FastHistogram({
      name: 'switchyard_gateway_overhead_seconds',
      help: 'Time a request spent in the gateway itself (total minus time waiting on backends)',
      labelNames: ['stream'],
      buckets: overheadBuckets,
      registers,
    });
    this.tokens = new FastCounter({
      name: 'switchyard_tokens_total',
      help: 'Tokens processed, by public model, backend and type (prompt or completion)',
      labelNames: ['model', 'backend', 'type'],
      registers,
    });
    this.failovers = new Counter({
      name: 'switchyard_failovers_total',
      help: 'Attempts that failed before the answer began and were retried on another backend',
      labelNames: ['model', 'backend', 'reason'],
      registers,
      aggregator: 'sum',
    });
    this.cancelled = new Counter({
      name: 'switchyard_upstream_cancelled_total',
      help: 'Upstream requests aborted because the client went away',
      labelNames: ['model', 'backend'],
      registers,
      aggregator: 'sum',
    });
    this.streamErrors = new Counter({
      name: 'switchyard_stream_errors_total',
      help: 'Streams that ended with an error event after they began',
      labelNames: ['model', 'backend', 'code'],
      registers,
      aggregator: 'sum',
    });
    this.decisions = new FastCounter({
      name: 'switchyard_routing_decisions_total',
      help: 'Routing decisions, by public model, chosen backend and reason (policy outcome, affinity, or failover:<error>)',
      labelNames: ['model', 'backend', 'reason'],
      registers,
    });
    this.cost = new FastCounter({
      name: 'switchyard_cost_total',
      help: "Cost of answered requests under each backend's cost model (backends[].cost units)",
      labelNames: ['model', 'backend'],
      registers,
    });
    this.cacheResults = new FastCounter({
      name: 'switchyard_cache_requests_total',
      help: 'Response cache results: hit, miss, bypass (not cacheable or Cache-Control: no-store)',
      labelNames: ['model', 'result'],
      registers,
    });
    this.cacheErrors = new Counter({
      name: 'switchyard_cache_errors_total',
      help: 'Cache reads or writes that failed or were too slow and were skipped',
      labelNames: ['operation', 'reason'],
      registers,
      aggregator: 'sum',
    });
    this.guardFindings = new Counter({
      name: 'switchyard_guard_findings_total',
      help: 'Requests in which the guard found a category of personal data or secrets, by the action taken',
      labelNames: ['category', 'action'],
      registers,
      aggregator: 'sum',
    });
    this.limitErrors = new Counter({
      name: 'switchyard_redis_errors_total',
      help: 'Redis failures met by keys and limits (handled per limits.onRedisError)',
      labelNames: ['limiter', 'operation'],
      registers,
      aggregator: 'sum',
    });
    this.refused = new FastCounter({
      name: 'switchyard_refused_requests_total',
      help: 'Requests refused by the gateway itself (auth, limits, admission; not errors relayed from a backend), by error code',
      labelNames: ['reason'],
      registers,
    });
    this.errors = new FastCounter({
      name: 'switchyard_errors_total',
      help: 'Error responses and stream error events, by catalogue name (SWY_ERR_*) and origin (gateway or upstream)',
      labelNames: ['name', 'origin'],
      registers,
    });
    if (tenantLabels) {
      this.tenantTokens = new FastCounter({
        name: 'switchyard_tenant_tokens_total',
        help: 'Tokens by tenant, public model and type (only with metrics.tenantLabels)',
        labelNames: ['tenant', 'model', 'type'],
        registers,
      });
      this.tenantCost = new FastCounter({
        name: 'switchyard_tenant_cost_total',
        help: 'Cost by tenant and public model (only with metrics.tenantLabels)',
        labelNames: ['tenant', 'model'],
        registers,
      });
    }
    if (redis) {
      new Gauge({
        name: 'switchyard_redis_up',
        help: "1 while the gateway's Redis connection is ready, 0 while it is down or reconnecting",
        registers,
        aggregator: 'min',
        collect() {
          this.set(redis.status === 'ready' ? 1 : 0);
        },
      });
    }
    this.backends = backends;
    this.prediction = new FastHistogram({
      name: 'switchyard_route_ttft_prediction_ratio',
      help: "Time to first token of each attempt divided by the router's prediction for it (1 = exact, 2 = twice as slow as predicted)",
      labelNames: ['backend'],
      buckets: [0.25, 0.5, 0.67, 0.8, 0.9, 1.1, 1.25, 1.5, 2, 4],
      registers,
    });
    registerBackendMetrics(registry, backends, router, hourlyCost);
  }

  /**
   * Publishes `switchyard_inflight_requests`: API requests (/v1/*) in progress on `server`, from arrival to the end of
   * the answer (admission queue and streams included): this replica's load, what the HorizontalPodAutoscaler scales
   * on (deploy/k8s/hpa.yaml). Counted on Node's server, so answers written past Fastify count too; a response always
   * ends with 'close' (finished or cut).
   */
  trackInflightRequests(server: Server): void {
    let inflight = 0;
    const ended = () => {
      inflight--;
    };
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      if (!request.url?.startsWith('/v1/')) return;
      inflight++;
      response.on('close', ended);
    });
    new Gauge({
      name: 'switchyard_inflight_requests',
      help: 'API requests (/v1/*) this gateway process has in progress, from arrival to the end of the answer, queued and streaming included',
      registers: [this.registry],
      // with server.workers, the pod's total (what the HPA scales on)
      aggregator: 'sum',
      collect() {
        this.set(inflight);
      },
    });
  }

  /** Records one finished request. */
  observe(record: RequestRecord, totalMs: number): void {
    const model = record.model ?? 'none';
    const backend = record.backend ?? 'none';
    const stream = record.stream ? 'true' : 'false';
    this.requests.series(model, backend, record.endpoint ?? 'none', statusClass(record.status), record.cache).inc();
    const errorName = record.errorName;
    if (errorName !== undefined) {
      this.errors.series(errorName, record.errorOrigin ?? 'gateway').inc();
      if (record.errorOrigin === 'gateway' && refusals.has(errorName)) this.refused.series(record.errorCode ?? 'error').inc();
    }
    if (record.model === undefined) return;
    if (record.endpoint) this.cacheResults.series(model, record.cache).inc();
    if (record.cost > 0) {
      this.cost.series(model, backend).inc(record.cost);
      this.backends.byId.get(backend)?.charge(record.cost, record.usage?.prompt_tokens ?? 0, record.usage?.completion_tokens ?? 0);
    }
    if (record.routeReason && record.backend) this.decisions.series(model, backend, record.routeReason).inc();
    this.duration.series(model, backend, stream).observe(totalMs / 1000);
    this.overhead.series(stream).observe(Math.max(0, totalMs - record.upstreamMs) / 1000);
    // Time to first token is measured on streamed answers only: a plain JSON answer's first byte is its last.
    if (record.firstByteMs !== undefined && record.status === 200 && record.streamedUpstream) {
      this.ttft.series(model, backend).observe(record.firstByteMs / 1000);
      const completion = record.usage?.completion_tokens ?? 0;
      if (completion > 1 && record.stream) this.tpot.series(model, backend).observe((totalMs - record.firstByteMs) / 1000 / (completion - 1));
    }
    if (record.usage) {
      this.tokens.series(model, backend, 'prompt').inc(record.usage.prompt_tokens);
      this.tokens.series(model, backend, 'completion').inc(record.usage.completion_tokens);
      if (this.tenantTokens && record.tenant) {
        this.tenantTokens.series(record.tenant, model, 'prompt').inc(record.usage.prompt_tokens);
        this.tenantTokens.series(record.tenant, model, 'completion').inc(record.usage.completion_tokens);
      }
    }
    if (this.tenantCost && record.tenant && record.cost > 0) this.tenantCost.series(record.tenant, model).inc(record.cost);
    // Failures before the last attempt: record.failures.slice(0, record.attempts - 1), without the copy.
    const failures = record.failures;
    if (failures.length > 0) {
      const end = record.attempts - 1;
      const stop = end < 0 ? Math.max(0, failures.length + end) : Math.min(end, failures.length);
      for (let i = 0; i < stop; i++) {
        const [failedBackend = 'none', reason = 'error'] = (failures[i] as string).split(':');
        this.failovers.labels(model, failedBackend, reason).inc();
      }
    }
    if (record.clientClosed) this.cancelled.labels(model, backend).inc();
    if (record.errorCode && record.status === 200) this.streamErrors.labels(model, backend, record.errorCode).inc();
  }
}
