/**
 * Registers every surface's routes (the one place routes of the API
 * surfaces are declared to Fastify) and the model list. Each inference
 * route carries its surface in its route config, so hooks (access, error
 * rendering) know the surface of the matched route, never guessing it from
 * the URL.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import type { Logger } from 'pino';
import { gatewayError } from '../errors.ts';
import { createSurfaces } from './index.ts';
import { inferenceHandler } from './pipeline.ts';
import type { Surface } from './surface.ts';
import { SurfaceSupport } from './support.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The API surface an inference route belongs to. */
    surface?: Surface;
  }
}

function modelObject(id: string, created: number, ownedBy: string) {
  return { id, object: 'model', created, owned_by: ownedBy };
}

async function surfaceRoutes(app: FastifyInstance): Promise<void> {
  const registry = app.switchyard.backends;
  const created = Math.floor(Date.now() / 1000);

  const surfaces = createSurfaces(app.switchyard, app.log as unknown as Logger);
  const support = new SurfaceSupport(registry.byId.values(), surfaces);
  app.switchyard.reloadChecks.push((config) => support.check(config.backends));
  for (const surface of surfaces) {
    const handler = inferenceHandler(app.switchyard, app.admitRequest, surface, support);
    for (const route of surface.routes) {
      // Also without the /v1 prefix, as llama-server and vLLM answer (clients configured with a bare base URL).
      for (const url of unprefixed(route.url)) app.route({ method: route.method, url, config: { surface, errorRenderer: surface.errors, access: 'client' }, handler });
    }
    surface.register?.(app);
  }

  const list = async () => ({
    object: 'list',
    data: registry.routeList.flatMap((route) => [route.name, ...route.config.aliases].map((id) => modelObject(id, created, route.config.ownedBy))),
  });
  for (const url of unprefixed('/v1/models')) app.get(url, { config: { access: 'client' } }, list);

  const one = async (request: FastifyRequest) => {
    const id = (request.params as { '*': string })['*'];
    const route = registry.resolve(id);
    if (!route) {
      throw gatewayError('SWY_ERR_MODEL_NOT_FOUND', { param: 'model', message: `The model \`${id.slice(0, 200)}\` does not exist on this gateway.` });
    }
    return modelObject(id, created, route.config.ownedBy);
  };
  for (const url of unprefixed('/v1/models/*')) app.get(url, { config: { access: 'client' } }, one);
}

/** A `/v1/...` path and the same without the prefix. */
function unprefixed(url: string): string[] {
  return url.startsWith('/v1/') ? [url, url.slice(3)] : [url];
}

/** The API surfaces and the model list. */
export const surfacesPlugin = fastifyPlugin(surfaceRoutes, {
  name: 'switchyard-surfaces',
  // Access declares who may call each route (onRoute) and provides admitRequest; body parses what the handlers read.
  dependencies: ['switchyard-access', 'switchyard-body'],
  decorators: { fastify: ['switchyard', 'admitRequest'] },
});
