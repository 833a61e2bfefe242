/**
 * CORS for browser clients (`server.cors.origins`, off by default). Runs first
 * among the request hooks: a preflight is answered before authentication (a
 * browser sends it without credentials), and the allow headers set here ride
 * on every answer — JSON, streams and errors — since answers written past
 * Fastify carry the reply's headers too (proxy/raw-reply.ts).
 */
import type { FastifyInstance } from 'fastify';
import fastifyPlugin from 'fastify-plugin';

/** Response headers a browser script may read. */
const exposed = [
  'x-request-id',
  'x-switchyard-backend',
  'x-switchyard-attempts',
  'x-switchyard-route-reason',
  'x-switchyard-cache',
  'x-switchyard-translated',
  'retry-after',
  'x-ratelimit-limit-requests',
  'x-ratelimit-remaining-requests',
  'x-ratelimit-reset-requests',
  'x-ratelimit-limit-tokens',
  'x-ratelimit-remaining-tokens',
  'x-ratelimit-reset-tokens',
].join(', ');

async function cors(app: FastifyInstance): Promise<void> {
  const { origins, maxAgeSeconds } = app.switchyard.config.server.cors;
  if (origins.length === 0) return;
  const anyOrigin = origins.includes('*');
  const allowed = new Set(origins);
  app.addHook('onRequest', (request, reply, done) => {
    const origin = request.headers.origin;
    if (origin === undefined || !(anyOrigin || allowed.has(origin))) {
      done();
      return;
    }
    reply.header('access-control-allow-origin', anyOrigin ? '*' : origin);
    if (!anyOrigin) reply.header('vary', 'origin');
    const preflight = request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined;
    if (!preflight) {
      reply.header('access-control-expose-headers', exposed);
      done();
      return;
    }
    const asked = request.headers['access-control-request-headers'];
    reply
      .code(204)
      .header('access-control-allow-methods', 'GET, POST, OPTIONS')
      .header(
        'access-control-allow-headers',
        typeof asked === 'string' && asked.length <= 2048 ? asked : 'authorization, content-type, x-api-key, anthropic-version, anthropic-beta',
      )
      .header('access-control-max-age', String(maxAgeSeconds))
      .send();
  });
}

export const corsPlugin = fastifyPlugin(cors, { name: 'switchyard-cors', decorators: { fastify: ['switchyard'] } });
