/**
 * Liveness and readiness: `/healthz` answers while the process serves;
 * `/readyz` needs a loaded config and at least one reachable backend, and
 * turns 503 while the gateway shuts down so load balancers stop sending.
 * Its status code is public; the detail (backend ids, their errors, Redis)
 * is for operators: shown with the admin token (or where /admin is open) and
 * on the admin listener, else just `{"status": ...}`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { redisHealth } from '../redis/health.ts';
import type { SwitchyardState } from '../state.ts';
import { checkAdminToken } from './access.ts';

/** The /readyz handler; `detailed` says whether this caller may see backend ids, errors and Redis. */
export function readyzHandler(state: SwitchyardState, detailed: (request: FastifyRequest) => boolean) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const ready = !state.shuttingDown && state.backends.anyUsable();
    const status = state.shuttingDown ? 'shutting_down' : ready ? 'ready' : 'no_backend_reachable';
    if (!detailed(request)) return reply.code(ready ? 200 : 503).send({ status });
    const backends = [...state.backends.byId.values()].map((backend) => ({
      id: backend.id,
      kind: backend.kind.name,
      health: backend.health,
      inflight: backend.inflight,
      ...(backend.health === 'up' ? {} : { lastError: backend.lastError ?? null }),
    }));
    // Redis is reported but does not gate readiness: without it the gateway still serves (cache bypassed,
    // limits per limits.onRedisError), and taking every replica out of rotation would turn a Redis blip into an outage.
    const redis = state.redis ? await redisHealth(state.redis, 250) : undefined;
    return reply.code(ready ? 200 : 503).send(redis ? { status, backends, redis } : { status, backends });
  };
}

/** True when the request would be let into /admin on this listener. */
function adminAllowed(state: SwitchyardState, request: FastifyRequest): boolean {
  try {
    checkAdminToken(request, state.config.admin.token, state.config.auth.mode);
    return true;
  } catch {
    return false;
  }
}

async function healthRoutes(app: FastifyInstance): Promise<void> {
  const state = app.switchyard;
  app.get('/healthz', { config: { access: 'public' } }, async () => ({ status: 'ok' }));
  // The name guidellm and other tools check before a run.
  app.get('/health', { config: { access: 'public' } }, async () => ({ status: 'ok' }));
  app.get(
    '/readyz',
    { config: { access: 'public' } },
    readyzHandler(state, (request) => adminAllowed(state, request)),
  );
}

export const healthPlugin = fastifyPlugin(healthRoutes, { name: 'switchyard-health', decorators: { fastify: ['switchyard'] } });
