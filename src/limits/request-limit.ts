/**
 * Requests per minute per API key, with @fastify/rate-limit on its own Redis
 * store (fixed one-minute window starting at a key's first request: INCR +
 * PEXPIRE in Lua, shared by every replica) or its in-process LocalStore
 * without Redis.
 *
 * The plugin is registered with `global: false` and used through
 * `app.createRateLimit()` from the auth/limits hook, because:
 * - its own headers are `x-ratelimit-limit|remaining|reset`, not OpenAI's
 *   `…-requests` names, and cannot be renamed;
 * - on a Redis error it either throws the raw ioredis error (skipOnError
 *   false → a 500 through the error handler) or silently allows
 *   (skipOnError true, nothing counted). `checkRequestLimit` catches the
 *   error and applies `limits.onRedisError` with counting: open = allow,
 *   closed = 503 limits_unavailable.
 */
import type { FastifyRequest } from 'fastify';
import type { RateLimitPluginOptions } from '@fastify/rate-limit';
import type { RedisClient } from '../redis/client.ts';
import { redisKey } from '../redis/key.ts';
import { gatewayError, type GatewayError } from '../errors.ts';
import type { RedisFailurePolicy } from './redis-policy.ts';

/** Who a request counts against and their limit; undefined = not limited. */
export interface RequestLimitSubject {
  id: string;
  rpm: number | undefined;
}

/** What rateLimitOptions needs. */
export interface RateLimitOptionsInput {
  /** Shared Redis; absent = the plugin's in-process store. */
  redis?: RedisClient | undefined;
  keyPrefix?: string;
  /** The subject of a request (set by the auth hook, e.g. from `request.apiKey`). */
  subject: (request: FastifyRequest) => RequestLimitSubject | undefined;
  windowMs?: number;
}

/** Options for `app.register(rateLimit, rateLimitOptions(...))`. */
export function rateLimitOptions(input: RateLimitOptionsInput): RateLimitPluginOptions {
  const limited = (request: FastifyRequest) => {
    const subject = input.subject(request);
    return subject && subject.rpm !== undefined ? { id: subject.id, rpm: subject.rpm } : undefined;
  };
  const options: RateLimitPluginOptions = {
    global: false,
    timeWindow: input.windowMs ?? 60_000,
    keyGenerator: (request) => limited(request)?.id ?? '-',
    max: (request) => limited(request)?.rpm ?? 0,
    allowList: (request) => limited(request) === undefined,
    skipOnError: false,
    addHeaders: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false, 'retry-after': false },
    addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
    // Used only if the plugin is registered with global: true (hook mode) instead.
    errorResponseBuilder: (_request, context) => requestLimitError(context.ttl),
  };
  if (input.redis) {
    options.redis = input.redis;
    options.nameSpace = `${redisKey(input.keyPrefix ?? 'swy', 'rpm')}:`;
  }
  return options;
}

/** What `app.createRateLimit()` returns for a request. */
export type RateLimitCheck = (
  request: FastifyRequest,
) => Promise<{ isAllowed: true; key: string } | { isAllowed: false; key: string; max: number; remaining: number; ttl: number; isExceeded: boolean }>;

/** The request-limit verdict for one request. */
export interface RequestLimitDecision {
  allowed: boolean;
  /** No limit applies to this request (no rpm). */
  unlimited: boolean;
  limit: number;
  remaining: number;
  resetMs: number;
  retryAfterMs: number;
  /** Redis failed and onRedisError: open let it through. */
  degraded: boolean;
}

/**
 * Counts the request (once) and answers. Throws 503 limits_unavailable when
 * Redis fails and the policy is closed.
 */
export async function checkRequestLimit(check: RateLimitCheck, request: FastifyRequest, policy: RedisFailurePolicy): Promise<RequestLimitDecision> {
  let result: Awaited<ReturnType<RateLimitCheck>>;
  try {
    result = await check(request);
  } catch (error) {
    policy.checkFailed('requests', error);
    return { allowed: true, unlimited: false, limit: 0, remaining: 0, resetMs: 0, retryAfterMs: 0, degraded: true };
  }
  if (result.isAllowed) return { allowed: true, unlimited: true, limit: 0, remaining: 0, resetMs: 0, retryAfterMs: 0, degraded: false };
  const resetMs = Math.max(0, result.ttl);
  return {
    allowed: !result.isExceeded,
    unlimited: false,
    limit: result.max,
    remaining: result.remaining,
    resetMs,
    retryAfterMs: result.isExceeded ? Math.max(1, resetMs) : 0,
    degraded: false,
  };
}

/** The 429 rate_limit_exceeded for requests per minute. */
export function requestLimitError(retryAfterMs: number, limit?: number): GatewayError {
  const message = limit === undefined ? undefined : `Rate limit reached for requests per minute: limit ${limit}. Retry in ${Math.max(1, Math.ceil(retryAfterMs / 1000))} s.`;
  return gatewayError('SWY_ERR_RATE_LIMIT_REQUESTS', {
    ...(message ? { message } : {}),
    retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)),
  });
}
