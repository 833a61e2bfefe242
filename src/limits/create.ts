/** Builds the key store, token limiter and budget store the config asks for. */
import type { Logger } from 'pino';
import type { RedisClient } from '../redis/client.ts';
import type { BudgetStore } from './budget.ts';
import type { AuthConfig, LimitsConfig } from './config.ts';
import { MemoryKeyStore, RedisKeyStore, recordsFromConfig } from './key-store.ts';
import { LayeredKeyStore } from './layered-key-store.ts';
import { MemoryBudgetStore } from './memory-budget.ts';
import { MemoryTokenLimiter } from './memory-token-limiter.ts';
import { RedisBudgetStore } from './redis-budget.ts';
import { RedisFailurePolicy, type RedisFailurePolicyOptions } from './redis-policy.ts';
import { RedisTokenLimiter } from './redis-token-limiter.ts';
import type { TokenLimiter } from './token-window.ts';
import { OpenReservations } from './open-reservations.ts';

/** The limit stores of one gateway. */
export interface Limits {
  keys: LayeredKeyStore;
  tokens: TokenLimiter;
  budgets: BudgetStore;
  /** Shared with checkRequestLimit. */
  policy: RedisFailurePolicy;
  /** Reservations of requests in flight: shutdown settles them all before Redis closes. */
  open: OpenReservations;
}

/** What createLimits needs. */
export interface LimitsDependencies {
  auth: AuthConfig;
  limits: LimitsConfig;
  logger: Logger;
  redis?: RedisClient | undefined;
  keyPrefix?: string;
  onRedisError?: RedisFailurePolicyOptions['onError'];
  /** Clock (tests). */
  now?: () => number;
}

/** Redis-backed stores when `redis` is given, in-memory ones otherwise. */
export function createLimits(deps: LimitsDependencies): Limits {
  const keyPrefix = deps.keyPrefix ?? 'swy';
  const policy = new RedisFailurePolicy({ mode: deps.limits.onRedisError, logger: deps.logger, onError: deps.onRedisError });
  const clock = deps.now ? { now: deps.now } : {};
  const configured = new MemoryKeyStore(recordsFromConfig(deps.auth.keys));
  const keyOptions: ConstructorParameters<typeof LayeredKeyStore>[2] = { cacheTtlMs: deps.auth.cacheTtlMs, maxStaleMs: deps.auth.maxStaleMs, ...clock };
  if (deps.onRedisError) {
    const report = deps.onRedisError;
    keyOptions.onRedisError = (error) => report('keys', 'check', error);
  }
  if (!deps.redis) {
    return {
      keys: new LayeredKeyStore(configured, undefined, keyOptions),
      tokens: new MemoryTokenLimiter(clock),
      budgets: new MemoryBudgetStore(clock),
      policy,
      open: new OpenReservations(),
    };
  }
  return {
    keys: new LayeredKeyStore(configured, new RedisKeyStore(deps.redis, keyPrefix), keyOptions),
    tokens: new RedisTokenLimiter(deps.redis, { keyPrefix, policy, ...clock }),
    budgets: new RedisBudgetStore(deps.redis, { keyPrefix, policy, ...clock }),
    policy,
    open: new OpenReservations(),
  };
}
