/** Serves the Prometheus registry at the configured path. */
import type { FastifyInstance } from 'fastify';
import fastifyPlugin from 'fastify-plugin';

async function metricsRoute(app: FastifyInstance): Promise<void> {
  const { config, promRegistry, metricsText } = app.switchyard;
  if (!config.metrics.enabled) return;
  app.get(config.metrics.path, { config: { access: 'metrics' } }, async (_request, reply) => {
    reply.header('content-type', promRegistry.contentType);
    return metricsText();
  });
}

export const metricsPlugin = fastifyPlugin(metricsRoute, { name: 'switchyard-metrics', decorators: { fastify: ['switchyard'] } });
