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
      backends.set(
        backendConfig.id,
        new Backend({ config: backendConfig, kind: backendKind(backendConfig.kind), origin, basePath, dispatcher: dispatcherFactory(origin, backendConfig), now }),
      );
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
