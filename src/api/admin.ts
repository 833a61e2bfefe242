/**
 * `GET /admin/backends`: each backend's health, circuit, load, latencies,
 * cost and the last routing decision it took part in, so an operator can see
 * why traffic goes where it goes.
 */
import type { FastifyInstance } from 'fastify';
import fastifyPlugin from 'fastify-plugin';

function rounded(value: number | undefined, digits = 1): number | null {
  if (value === undefined || !Number.isFinite(value)) return null;
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

async function adminRoutes(app: FastifyInstance): Promise<void> {
  const { backends, router } = app.switchyard;
  app.get('/admin/backends', { config: { access: 'admin' } }, async () => {
    const now = Date.now();
    return {
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
          latency: {
            measured: backend.service.measured,
            prefillBaseMs: backend.service.measured ? rounded(backend.service.prefill.intercept) : null,
            prefillMsPerToken: backend.service.measured ? rounded(backend.service.prefill.slope, 4) : null,
            tpotMs: rounded(backend.service.tpot.value, 2),
            outputTokens: rounded(backend.service.outputTokens.value),
            capacityTokensPerSecond: rounded(backend.capacityTokensPerSecond()),
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
}

export const adminPlugin = fastifyPlugin(adminRoutes, { name: 'switchyard-admin', decorators: { fastify: ['switchyard'] } });
