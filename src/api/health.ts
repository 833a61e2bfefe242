/**
 * Liveness and readiness: `/healthz` answers while the process serves;
 * `/readyz` needs a loaded config and at least one reachable backend, and
 * turns 503 while the gateway shuts down so load balancers stop sending.
 */
import type { FastifyInstance } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { redisHealth } from '../redis/health.ts';

async function healthRoutes(app: FastifyInstance): Promise<void> {
  const state = app.switchyard;
  app.get('/healthz', { config: { access: 'public' } }, async () => ({ status: 'ok' }));
  // The name guidellm and other tools check before a run.
  app.get('/health', { config: { access: 'public' } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { config: { access: 'public' } }, async (_request, reply) => {
    const backends = [...state.backends.byId.values()].map((backend) => ({
      id: backend.id,
      kind: backend.kind.name,
      health: backend.health,
      inflight: backend.inflight,
      ...(backend.health === 'up' ? {} : { lastError: backend.lastError ?? null }),
    }));
    const ready = !state.shuttingDown && state.backends.anyUsable();
    const status = state.shuttingDown ? 'shutting_down' : ready ? 'ready' : 'no_backend_reachable';
    // Redis is reported but does not gate readiness: without it the gateway still serves (cache bypassed,
    // limits per limits.onRedisError), and taking every replica out of rotation would turn a Redis blip into an outage.
    const redis = state.redis ? await redisHealth(state.redis, 250) : undefined;
    return reply.code(ready ? 200 : 503).send(redis ? { status, backends, redis } : { status, backends });
  });
}

export const healthPlugin = fastifyPlugin(healthRoutes, { name: 'switchyard-health' });
