/**
 * Who is calling, and may they: API keys (auth.mode keys) and requests per
 * minute on client routes; the admin token on admin and metrics routes, by the
 * access class each route declares. Runs in onRequest, before the body is
 * read, so refused requests cost little.
 */
import rateLimit from '@fastify/rate-limit';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyContextConfig, FastifyError, FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { gatewayError } from '../errors.ts';
import { createAuthenticator } from '../limits/authenticate.ts';
import { certificateIdentity } from './tls.ts';
import type { AuthConfig } from '../limits/config.ts';
import type { KeyRecord } from '../limits/api-keys.ts';
import { rateLimitHeaders, retryAfterHeaders } from '../limits/headers.ts';
import { checkRequestLimit, rateLimitOptions, requestLimitError } from '../limits/request-limit.ts';
import { limitSubject, type LimitSubject } from '../limits/subject.ts';

/**
 * Who may call a route, declared in its route config (`config: { access }`):
 * `public` anyone (health); `client` an API key when auth.mode is keys
 * (inference surfaces and the model list; surface routes get it by default);
 * `admin` the admin token; `metrics` the admin token on the client listener
 * (open on the separate admin listener, config admin.port).
 */
export type AccessClass = 'public' | 'client' | 'admin' | 'metrics';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: AccessClass;
  }
  interface FastifyInstance {
    /**
     * Counts a request against its key's requests per minute; rejects with 429 when over. Undefined: no
     * limit applies. The inference pipeline calls it (concurrently with its own Redis work); every other
     * client route is counted in onRequest.
     */
    admitRequest(request: FastifyRequest, reply: FastifyReply): Promise<void> | undefined;
  }
  interface FastifyRequest {
    apiKey: KeyRecord | undefined;
    limitSubject: LimitSubject | undefined;
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Checks `Authorization: Bearer <admin.token>` in constant time. */
export function checkAdminToken(request: FastifyRequest, token: string | undefined, authMode: AuthConfig['mode']): void {
  if (token === undefined) {
    if (authMode !== 'none') throw gatewayError('SWY_ERR_ADMIN_DISABLED');
    return;
  }
  const header = request.headers.authorization;
  const given = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7) : '';
  if (!timingSafeEqual(digest(given), digest(token))) throw gatewayError('SWY_ERR_ADMIN_TOKEN');
}

async function access(app: FastifyInstance): Promise<void> {
  const { config, limits, redis } = app.switchyard;
  app.decorateRequest('apiKey', undefined);
  app.decorateRequest('limitSubject', undefined);
  await app.register(rateLimit, rateLimitOptions({ redis, keyPrefix: config.redis?.keyPrefix ?? 'swy', subject: (request) => request.limitSubject }));
  const checkRequests = app.createRateLimit();
  const keysRequired = config.auth.mode !== 'none';
  const authenticate = createAuthenticator(config.auth, limits.keys);
  const certified = certificateIdentity(config.server.tls);

  /** Counts the request against its key's requests per minute; rejects with 429 when over. */
  const admitRequest = (request: FastifyRequest, reply: FastifyReply): Promise<void> | undefined =>
    request.limitSubject?.rpm === undefined ? undefined : countRequest(request, reply);
  const countRequest = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const requests = await checkRequestLimit(checkRequests, request, limits.policy);
    if (!requests.unlimited && !requests.degraded) reply.headers(rateLimitHeaders({ requests }));
    if (!requests.allowed) {
      reply.headers(retryAfterHeaders(requests.retryAfterMs));
      throw requestLimitError(requests.retryAfterMs, requests.limit);
    }
  };
  app.decorate('admitRequest', admitRequest);

  /** Sets who is calling and, except on the inference endpoints (they count it themselves), counts the request. */
  const identified = (request: FastifyRequest, reply: FastifyReply, key: KeyRecord | undefined, done: HookHandlerDoneFunction): void => {
    // read per request: a config reload may change the default limits
    const subject = limitSubject(key, app.switchyard.config.limits);
    request.apiKey = key;
    request.limitSubject = subject;
    request.record.keyId = key?.id;
    request.record.tenant = subject.tenant;
    // The inference endpoints count the request themselves, concurrently with the cache lookup and the
    // token reservation (one Redis round trip instead of two or three before the request goes out).
    if (subject.rpm === undefined || request.routeOptions.config.surface !== undefined) {
      done();
      return;
    }
    countRequest(request, reply).then(() => done(), done);
  };

  // Every route says who may call it; a route without an access class is a bug caught at startup.
  app.addHook('onRoute', (route) => {
    route.config ??= {};
    const routeConfig = route.config as FastifyContextConfig;
    if (routeConfig.access === undefined && routeConfig.surface !== undefined) routeConfig.access = 'client';
    if (routeConfig.access === undefined) throw new Error(`route ${String(route.method)} ${route.url} declares no access class (route config \`access\`)`);
  });

  // Callback style: most requests need no await here, and an async hook costs a promise and a microtask hop.
  // Authorisation follows the route Fastify matched (its config), never the raw URL: `/%761/...` matches the
  // same route as `/v1/...` and is checked the same (and refused earlier as non-canonical, see path.ts).
  app.addHook('onRequest', (request, reply, done) => {
    const access = request.routeOptions.config.access;
    if (access === 'client') {
      // A verified client certificate listed in server.tls.clients identifies its holder (no key needed).
      const holder = certified?.(request.raw.socket);
      if (holder) identified(request, reply, holder, done);
      else if (!keysRequired) identified(request, reply, undefined, done);
      else authenticate(request.headers).then((key) => identified(request, reply, key, done), done);
      return;
    }
    if (access === 'admin' || access === 'metrics') {
      try {
        checkAdminToken(request, config.admin.token, config.auth.mode);
      } catch (error) {
        done(error as FastifyError);
        return;
      }
    }
    done(); // public routes, and unknown URLs (the not-found handler serves nothing)
  });
}

export const accessPlugin = fastifyPlugin(access, { name: 'switchyard-access', decorators: { fastify: ['switchyard'] } });
