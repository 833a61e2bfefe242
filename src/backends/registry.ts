/**
 * The backends and public models from config, with the live state the router
 * reads on the hot path (in-flight count, health). One undici Pool per backend.
 */
import { Pool, type Dispatcher } from 'undici';
import type { BackendConfig, ModelConfig, SwitchyardConfig } from '../config/schema.ts';
import { CircuitBreaker } from './circuit.ts';
import { backendKind, type BackendKind } from './kinds/index.ts';
import { LatencyStats } from './latency.ts';

/** Health as last seen; `unknown` until the first probe answers (treated as usable). */
export type BackendHealth = 'unknown' | 'up' | 'loading' | 'down';

/** What the runtime last told us about itself. */
export interface LiveSignals {
  queued: number | undefined;
  running: number | undefined;
  kvCacheUsage: number | undefined;
  /** Clock time of the last successful scrape or load report (0 = never). */
  scrapedAt: number;
  scrapeError: string | undefined;
  /** Parallel slots (from config, else as the kind's discovery reports them). */
  slots: number | undefined;
  /** Served model ids and their context length, from the kind's discovery. */
  models: Map<string, number | undefined>;
  modelsDiscoveredAt: number;
}

/** One configured backend and its live state. */
export interface Backend {
  readonly id: string;
  readonly config: BackendConfig;
  readonly kind: BackendKind;
  /** `http://host:port` the pool connects to. */
  readonly origin: string;
  /** Path prefix before `/v1/...` ('' for most servers). */
  readonly basePath: string;
  readonly dispatcher: Dispatcher;
  /** `authorization` header value for the backend, when it needs a key. */
  readonly authorization: string | undefined;
  /** Stream upstream for non-streaming clients (prompt cancellation on llama.cpp). */
  readonly streamUpstream: boolean;
  /** Extra request headers asking for the kind's per-response load report, when enabled and the kind has one. */
  readonly loadReportHeaders: Readonly<Record<string, string>> | undefined;
  inflight: number;
  health: BackendHealth;
  healthCheckedAt: number;
  healthFailures: number;
  healthSuccesses: number;
  lastError: string | undefined;
  readonly live: LiveSignals;
  readonly latency: LatencyStats;
  readonly circuit: CircuitBreaker;
  /** Last routing score details, for /admin/backends. */
  lastDecision: { at: number; model: string; reason: string; predictedTtftMs?: number; costPer1M?: number; score?: number; chosen: boolean } | undefined;
}

/** One place a public model can be served: a backend and the model id it knows. */
export interface Target {
  readonly backend: Backend;
  readonly model: string;
  /** `model` as a JSON string, ready to splice into request bodies. */
  readonly modelJson: string;
  readonly weight: number;
}

/** A public model (with aliases) and where it can go. */
export interface Route {
  readonly name: string;
  readonly config: ModelConfig;
  readonly targets: readonly Target[];
}

/** Builds the dispatcher for one backend; tests and benchmarks may pass their own. */
export type DispatcherFactory = (origin: string, backend: BackendConfig) => Dispatcher;

export const defaultDispatcherFactory: DispatcherFactory = (origin, backend) =>
  new Pool(origin, {
    connect: { timeout: backend.timeouts.connectMs },
    keepAliveTimeout: 30_000,
    headersTimeout: 0,
    bodyTimeout: 0,
  });

function splitUrl(url: string): { origin: string; basePath: string } {
  const parsed = new URL(url);
  let basePath = parsed.pathname.replace(/\/+$/, '');
  if (basePath.endsWith('/v1')) basePath = basePath.slice(0, -3);
  return { origin: parsed.origin, basePath };
}

/** Backends and routes, built once from a validated config. */
export class BackendRegistry {
  /** Backends by id. */
  readonly byId: ReadonlyMap<string, Backend>;
  /** Public names and aliases to routes. */
  readonly routes: ReadonlyMap<string, Route>;
  /** Routes in config order, each once. */
  readonly routeList: readonly Route[];

  constructor(config: SwitchyardConfig, dispatcherFactory: DispatcherFactory = defaultDispatcherFactory, now: () => number = Date.now) {
    const backends = new Map<string, Backend>();
    for (const backendConfig of config.backends) {
      const { origin, basePath } = splitUrl(backendConfig.url);
      const kind = backendKind(backendConfig.kind);
      const streamUpstream = backendConfig.streamUpstream === 'always' || (backendConfig.streamUpstream === 'auto' && kind.streamUpstreamByDefault);
      backends.set(backendConfig.id, {
        id: backendConfig.id,
        config: backendConfig,
        kind,
        origin,
        basePath,
        dispatcher: dispatcherFactory(origin, backendConfig),
        authorization: backendConfig.apiKey ? `Bearer ${backendConfig.apiKey}` : undefined,
        streamUpstream,
        loadReportHeaders: backendConfig.loadReport ? kind.loadReport?.requestHeaders : undefined,
        inflight: 0,
        health: 'unknown',
        healthCheckedAt: 0,
        healthFailures: 0,
        healthSuccesses: 0,
        lastError: undefined,
        live: {
          queued: undefined,
          running: undefined,
          kvCacheUsage: undefined,
          scrapedAt: 0,
          scrapeError: undefined,
          slots: backendConfig.slots,
          models: new Map(),
          modelsDiscoveredAt: 0,
        },
        latency: new LatencyStats(),
        circuit: new CircuitBreaker(backendConfig.circuit, now),
        lastDecision: undefined,
      });
    }
    const routes = new Map<string, Route>();
    const routeList: Route[] = [];
    for (const modelConfig of config.models) {
      const route: Route = {
        name: modelConfig.name,
        config: modelConfig,
        targets: modelConfig.targets.map((target) => ({
          backend: backends.get(target.backend) as Backend,
          model: target.model,
          modelJson: JSON.stringify(target.model),
          weight: target.weight,
        })),
      };
      routeList.push(route);
      for (const name of [modelConfig.name, ...modelConfig.aliases]) routes.set(name, route);
    }
    this.byId = backends;
    this.routes = routes;
    this.routeList = routeList;
  }

  /** The route for a public name or alias. */
  resolve(model: string): Route | undefined {
    return this.routes.get(model);
  }

  /** True when some backend is up (or not yet probed). */
  anyUsable(): boolean {
    for (const backend of this.byId.values()) if (backend.health === 'up' || backend.health === 'unknown') return true;
    return false;
  }

  async close(): Promise<void> {
    await Promise.all([...this.byId.values()].map((backend) => backend.dispatcher.close().catch(() => undefined)));
  }
}
