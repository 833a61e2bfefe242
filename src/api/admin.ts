/**
 * `GET /admin/backends`: each backend's health, circuit, load, latencies,
 * cost and the last routing decision it took part in, so an operator can see
 * why traffic goes where it goes. `POST /admin/reload`: re-read the config
 * file (see config/reload.ts for what a reload changes).
 */
import type { FastifyInstance } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { reloadProblems } from '../config/load.ts';
import type { ModelFigures } from '../backends/latency.ts';
import { gatewayError, type GatewayError } from '../errors.ts';

function rounded(value: number | undefined, digits = 1): number | null {
  if (value === undefined || !Number.isFinite(value)) return null;
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** One model's learnt service figures as /admin/backends shows them. */
function latencyOf(figures: ModelFigures) {
  return {
    measured: figures.measured,
    prefillBaseMs: figures.measured ? rounded(figures.prefill.intercept) : null,
    prefillMsPerToken: figures.measured ? rounded(figures.prefill.slope, 4) : null,
    tpotMs: rounded(figures.tpot.value, 2),
    outputTokens: rounded(figures.outputTokens.value),
  };
}

async function adminRoutes(app: FastifyInstance): Promise<void> {
  const { backends, router } = app.switchyard;
  app.get('/admin/backends', { config: { access: 'admin' } }, async () => {
    const now = Date.now();
    return {
      // removed by a config reload, still finishing the requests they hold
      draining: backends.draining.map((backend) => ({ id: backend.id, inflight: backend.inflight })),
      backends: [...backends.byId.values()].map((backend) => {
        const admission = router.admission(backend);
        const live = backend.live;
        return {
          id: backend.id,
          kind: backend.kind.name,
          url: backend.origin + backend.basePath,
          health: backend.health,
          lastError: backend.lastError ?? null,
          circuit: { state: backend.circuit.state, opens: backend.circuit.opens, openedAt: backend.circuit.openedAt ? new Date(backend.circuit.openedAt).toISOString() : null },
          load: {
            inflight: backend.inflight,
            // cluster mode: every replica's requests as this one routes on them, and the age of the others' count
            fleetInflight: app.switchyard.cluster ? router.inflightOf(backend, now) : null,
            fleetAgeMs: app.switchyard.cluster && backend.fleetReadAt ? now - backend.fleetReadAt : null,
            maxConcurrency: backend.config.maxConcurrency,
            gatewayQueue: admission.waiting,
            shed: admission.shed,
            runtimeQueued: live.queued ?? null,
            runtimeRunning: live.running ?? null,
            kvCacheUsage: rounded(live.kvCacheUsage, 3),
            slots: live.slots ?? null,
            scrapeAgeMs: live.scrapedAt ? now - live.scrapedAt : null,
            scrapeError: live.scrapeError ?? null,
          },
          // The most measured model's figures, then every model's (a backend may serve several).
          latency: {
            ...latencyOf(backend.service.main),
            capacityTokensPerSecond: rounded(backend.capacityTokensPerSecond()),
            byModel: Object.fromEntries([...backend.service.models].map(([model, figures]) => [model, latencyOf(figures)])),
          },
          models: Object.fromEntries([...live.models].map(([id, contextLength]) => [id, { contextLength: contextLength ?? null }])),
          cost: backend.config.cost,
          lastDecision: backend.lastDecision
            ? {
                ...backend.lastDecision,
                at: new Date(backend.lastDecision.at).toISOString(),
                predictedTtftMs: rounded(backend.lastDecision.predictedTtftMs),
                score: rounded(backend.lastDecision.score, 4),
              }
            : null,
        };
      }),
    };
  });

  // Re-reads the config file the gateway started from (as SIGHUP does): an invalid file changes nothing.
  app.post('/admin/reload', { config: { access: 'admin' } }, async () => {
    const fromFile = app.switchyard.reloadFromFile;
    if (fromFile === undefined) throw gatewayError('SWY_ERR_RELOAD_UNAVAILABLE');
    try {
      return { status: 'reloaded', ...(await fromFile()) };
    } catch (error) {
      throw reloadRefused(error);
    }
  });
}

/** A refused reload as the client sees it: each problem as `path: message`. */
export function reloadRefused(error: unknown): GatewayError {
  return gatewayError('SWY_ERR_CONFIG_INVALID', { message: `The config file is not valid; the running configuration stays. ${reloadProblems(error).join('; ')}` });
}

export const adminPlugin = fastifyPlugin(adminRoutes, { name: 'switchyard-admin', decorators: { fastify: ['switchyard'] } });
