import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GatewayError } from '../../../src/errors.ts';
import { rateLimitHeaders, retryAfterHeaders } from '../../../src/limits/headers.ts';
import { RedisFailurePolicy } from '../../../src/limits/redis-policy.ts';
import { checkRequestLimit, rateLimitOptions, requestLimitError } from '../../../src/limits/request-limit.ts';
import { closeRedis, connectRedis, createRedis, type RedisClient } from '../../../src/redis/client.ts';
import { startRedis, type TestRedis } from '../../helpers/redis.ts';

const logger = pino({ level: 'silent' });

/** A minimal gateway: the header x-key-id stands in for the authenticated key, x-rpm for its limit. */
async function gateway(redis: RedisClient | undefined, mode: 'open' | 'closed', errors: string[] = []): Promise<FastifyInstance> {
  const app = Fastify();
  const subject = (request: FastifyRequest) => {
    const id = request.headers['x-key-id'];
    const rpm = request.headers['x-rpm'];
    return typeof id === 'string' ? { id, rpm: typeof rpm === 'string' ? Number(rpm) : undefined } : undefined;
  };
  await app.register(rateLimit, rateLimitOptions({ redis, keyPrefix: 'swy', subject }));
  const check = app.createRateLimit();
  const policy = new RedisFailurePolicy({ mode, onError: (limiter, operation) => errors.push(`${limiter}:${operation}`) });
  app.setErrorHandler((error, _request, reply) => {
    const gatewayError = error instanceof GatewayError ? error : new GatewayError('SWY_ERR_INTERNAL', { message: 'boom' });
    if (gatewayError.retryAfterSeconds !== undefined) reply.header('retry-after', gatewayError.retryAfterSeconds);
    reply.code(gatewayError.status).send(gatewayError.toJSON());
  });
  app.addHook('onRequest', async (request, reply) => {
    const decision = await checkRequestLimit(check, request, policy);
    if (decision.unlimited || decision.degraded) return;
    reply.headers(rateLimitHeaders({ requests: decision }));
    if (!decision.allowed) {
      reply.headers(retryAfterHeaders(decision.retryAfterMs));
      throw requestLimitError(decision.retryAfterMs, decision.limit);
    }
  });
  app.get('/v1/models', async () => ({ object: 'list', data: [] }));
  await app.ready();
  return app;
}

const call = (app: FastifyInstance, id: string, rpm?: number) =>
  app.inject({ method: 'GET', url: '/v1/models', headers: { 'x-key-id': id, ...(rpm === undefined ? {} : { 'x-rpm': String(rpm) }) } });

describe('requests per minute with @fastify/rate-limit', () => {
  let server: TestRedis;
  let replicaA: RedisClient;
  let replicaB: RedisClient;
  const redisConfig = (url: string) => ({ url, keyPrefix: 'swy', commandTimeoutMs: 300, connectTimeoutMs: 1_000, maxRetriesPerRequest: 1, startupWaitMs: 0 });

  beforeAll(async () => {
    server = await startRedis();
    replicaA = createRedis(redisConfig(server.url), logger);
    replicaB = createRedis(redisConfig(server.url), logger);
    await Promise.all([connectRedis(replicaA, 2_000), connectRedis(replicaB, 2_000)]);
  });
  beforeEach(() => server.flush());
  afterAll(async () => {
    await closeRedis(replicaA);
    await closeRedis(replicaB);
    await server.stop();
  });

  it('is exact at its boundary and shared by two gateways on one Redis, with OpenAI headers and 429 body', async () => {
    const [a, b] = await Promise.all([gateway(replicaA, 'open'), gateway(replicaB, 'open')]);
    const statuses: number[] = [];
    for (let index = 0; index < 3; index++) statuses.push((await call(index % 2 ? b : a, 'key-1', 3)).statusCode);
    expect(statuses).toEqual([200, 200, 200]);
    const ok = await call(a, 'key-2', 3); // another key has its own count
    expect(ok.statusCode).toBe(200);
    expect(ok.headers['x-ratelimit-limit-requests']).toBe('3');
    expect(ok.headers['x-ratelimit-remaining-requests']).toBe('2');
    expect(ok.headers['x-ratelimit-reset-requests']).toMatch(/^(\d+s|\d+ms|1m0s)$/);
    expect(ok.headers['x-ratelimit-limit']).toBeUndefined(); // the plugin's own headers are off

    const refused = await call(b, 'key-1', 3);
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toEqual({
      error: { message: expect.stringContaining('requests per minute'), type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' },
    });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(refused.headers['retry-after-ms'])).toBeGreaterThan(0);
    expect(refused.headers['x-ratelimit-remaining-requests']).toBe('0');
    expect((await call(a, 'anonymous-without-rpm')).statusCode).toBe(200); // no rpm: not limited
    await Promise.all([a.close(), b.close()]);
  });

  it('works without Redis (in-process store)', async () => {
    const app = await gateway(undefined, 'open');
    expect((await call(app, 'k', 1)).statusCode).toBe(200);
    expect((await call(app, 'k', 1)).statusCode).toBe(429);
    await app.close();
  });

  it('Redis killed: open lets requests through (counted), closed answers 503 limits_unavailable; both recover', async () => {
    const openErrors: string[] = [];
    const closedErrors: string[] = [];
    const [openApp, closedApp] = await Promise.all([gateway(replicaA, 'open', openErrors), gateway(replicaB, 'closed', closedErrors)]);
    expect((await call(openApp, 'k', 100)).statusCode).toBe(200);
    await server.kill();
    const deadline = Date.now() + 5_000;
    while ((replicaA.status === 'ready' || replicaB.status === 'ready') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));

    const started = performance.now();
    expect((await call(openApp, 'k', 100)).statusCode).toBe(200);
    const closed = await call(closedApp, 'k', 100);
    expect(performance.now() - started).toBeLessThan(200);
    expect(closed.statusCode).toBe(503);
    expect(closed.json().error).toMatchObject({ code: 'limits_unavailable', type: 'server_error' });
    expect(openErrors).toEqual(['requests:check']);
    expect(closedErrors).toEqual(['requests:check']);

    await server.restart();
    const back = Date.now() + 5_000;
    while ((await call(closedApp, 'k', 100)).statusCode !== 200 && Date.now() < back) await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await call(closedApp, 'k', 100)).headers['x-ratelimit-limit-requests']).toBe('100');
    await Promise.all([openApp.close(), closedApp.close()]);
  });
});
