/**
 * The backends and public models from config (each backend owns its live
 * state, see backend.ts). One undici Pool per backend.
 */
import { Pool, type Dispatcher } from 'undici';
import type { BackendConfig, ModelConfig, SwitchyardConfig } from '../config/schema.ts';
import { Backend } from './backend.ts';
import { backendKind } from './kinds/index.ts';

export { Backend, type BackendHealth, type LastDecision, type LiveSignals } from './backend.ts';

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

function routesOf(models: readonly ModelConfig[], backends: ReadonlyMap<string, Backend>): [Map<string, Route>, Route[]] {
  const routes = new Map<string, Route>();
  const routeList: Route[] = [];
  for (const modelConfig of models) {
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
  return [routes, routeList];
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

/** What a config reload changed among the backends. */
export interface BackendChanges {
  /** New ids, and ids whose address or kind changed (a new backend under an old name). */
  added: Backend[];
  /** Gone, or replaced: they finish the requests they hold, then their connections close. */
  removed: Backend[];
  /** Same address and kind, other settings changed: updated in place, live state kept. */
  updated: Backend[];
}

/** Backends and routes from a validated config; a reload swaps them at once (reconfigure). */
export class BackendRegistry {
  #byId: ReadonlyMap<string, Backend>;
  #routes: ReadonlyMap<string, Route>;
  #routeList: readonly Route[];
  private readonly dispatcherFactory: DispatcherFactory;
  private readonly now: () => number;
  /** Backends a reload removed that still carry requests: their pools close when the last one ends. */
  private readonly retiring = new Set<Backend>();
  private retireTimer: NodeJS.Timeout | undefined;

  constructor(config: SwitchyardConfig, dispatcherFactory: DispatcherFactory = defaultDispatcherFactory, now: () => number = Date.now) {
    this.dispatcherFactory = dispatcherFactory;
    this.now = now;
    const backends = new Map<string, Backend>();
    for (const backendConfig of config.backends) backends.set(backendConfig.id, this.create(backendConfig));
    this.#byId = backends;
    [this.#routes, this.#routeList] = routesOf(config.models, backends);
  }

  /** Backends by id. */
  get byId(): ReadonlyMap<string, Backend> {
    return this.#byId;
  }
  /** Public names and aliases to routes. */
  get routes(): ReadonlyMap<string, Route> {
    return this.#routes;
  }
  /** Routes in config order, each once. */
  get routeList(): readonly Route[] {
    return this.#routeList;
  }

  /**
   * Applies a reloaded config: a backend whose id, url and kind stay keeps its object (health, circuit,
   * service times, requests in flight) with its new settings; the routes are rebuilt. One synchronous swap,
   * so a request sees either the old routes or the new ones. Requests already routed keep their backend.
   */
  reconfigure(config: SwitchyardConfig): BackendChanges {
    const changes: BackendChanges = { added: [], removed: [], updated: [] };
    const backends = new Map<string, Backend>();
    for (const backendConfig of config.backends) {
      const old = this.#byId.get(backendConfig.id);
      if (old && old.config.url === backendConfig.url && old.config.kind === backendConfig.kind) {
        if (JSON.stringify(old.config) !== JSON.stringify(backendConfig)) {
          old.reconfigure(backendConfig);
          changes.updated.push(old);
        }
        backends.set(old.id, old);
        continue;
      }
      if (old) changes.removed.push(old);
      const backend = this.create(backendConfig);
      changes.added.push(backend);
      backends.set(backend.id, backend);
    }
    for (const [id, old] of this.#byId) if (!backends.has(id)) changes.removed.push(old);
    const [routes, routeList] = routesOf(config.models, backends);
    this.#byId = backends;
    this.#routes = routes;
    this.#routeList = routeList;
    for (const backend of changes.removed) this.retire(backend);
    return changes;
  }

  /** Backends removed by a reload and still finishing requests. */
  get draining(): readonly Backend[] {
    return [...this.retiring];
  }

  /** Closes a removed backend's pool once it carries no request of ours (checked every 250 ms). */
  private retire(backend: Backend): void {
    this.retiring.add(backend);
    this.retireTimer ??= setInterval(() => {
      for (const gone of this.retiring) {
        if (gone.inflight > 0) continue;
        this.retiring.delete(gone);
        gone.dispatcher.close().catch(() => undefined);
      }
      if (this.retiring.size === 0) {
        clearInterval(this.retireTimer);
        this.retireTimer = undefined;
      }
    }, 250);
    this.retireTimer.unref();
  }

  private create(config: BackendConfig): Backend {
    const { origin, basePath } = splitUrl(config.url);
    return new Backend({ config, kind: backendKind(config.kind), origin, basePath, dispatcher: this.dispatcherFactory(origin, config), now: this.now });
  }

  /** The route for a public name or alias. */
  resolve(model: string): Route | undefined {
    return this.#routes.get(model);
  }

  /** True when some backend is up (or not yet probed). */
  anyUsable(): boolean {
    for (const backend of this.byId.values()) if (backend.health === 'up' || backend.health === 'unknown') return true;
    return false;
  }

  async close(): Promise<void> {
    clearInterval(this.retireTimer);
    const all = [...this.byId.values(), ...this.retiring];
    this.retiring.clear();
    await Promise.all(all.map((backend) => backend.dispatcher.close().catch(() => undefined)));
  }
}
