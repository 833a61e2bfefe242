import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GatewayError } from '../../../src/errors.ts';
import { authenticate } from '../../../src/limits/authenticate.ts';
import { budgetError, budgetSpent, budgetSubjects } from '../../../src/limits/budget.ts';
import type { AuthConfig, LimitsConfig } from '../../../src/limits/config.ts';
import { createLimits } from '../../../src/limits/create.ts';
import { createKey, listKeys, revokeKey } from '../../../src/limits/key-admin.ts';
import { RedisKeyStore } from '../../../src/limits/key-store.ts';
import { RedisBudgetStore } from '../../../src/limits/redis-budget.ts';
import { RedisFailurePolicy } from '../../../src/limits/redis-policy.ts';
import { RedisTokenLimiter } from '../../../src/limits/redis-token-limiter.ts';
import { closeRedis, connectRedis, createRedis, type RedisClient } from '../../../src/redis/client.ts';
import { startRedis, type TestRedis } from '../../helpers/redis.ts';

const logger = pino({ level: 'silent' });
const minute = 60_000;
// Pinned to 10 s into the current minute so no test straddles a bucket boundary.
const pinned = Math.floor(Date.now() / minute) * minute + 10_000;
const redisConfig = (url: string) => ({ url, keyPrefix: 'swy', commandTimeoutMs: 300, connectTimeoutMs: 1_000, maxRetriesPerRequest: 1, startupWaitMs: 0 });
const open = new RedisFailurePolicy({ mode: 'open' });
const limitsConfig = (onRedisError: 'open' | 'closed'): LimitsConfig => ({ onRedisError, defaults: {}, reserveCompletionTokens: 512, tenants: {} });
const authConfig: AuthConfig = { mode: 'keys', keys: [], cacheTtlMs: 60_000, maxStaleMs: 30_000 };

async function eventually(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('condition not met in time');
}

async function rejection(promise: Promise<unknown>): Promise<GatewayError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

describe('limits on Redis', () => {
  let server: TestRedis;
  let replicaA: RedisClient;
  let replicaB: RedisClient;

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

  it('token limiter is exact at its boundary: tpm 100, 60 ok, 41 refused, settle 60→30 frees 30', async () => {
    const limiter = new RedisTokenLimiter(replicaA, { keyPrefix: 'swy', policy: open, now: () => pinned });
    const first = await limiter.reserve('key-1', 100, 60);
    expect(first).toMatchObject({ allowed: true, limit: 100, remaining: 40, degraded: false });
    const refused = await limiter.reserve('key-1', 100, 41);
    expect(refused).toMatchObject({ allowed: false, remaining: 40, tooLarge: false });
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    await limiter.settle(first.reservation, 30);
    expect(await limiter.reserve('key-1', 100, 71)).toMatchObject({ allowed: false });
    expect(await limiter.reserve('key-1', 100, 70)).toMatchObject({ allowed: true, remaining: 0 });
    expect(await limiter.reserve('key-1', 100, 101)).toMatchObject({ allowed: false, tooLarge: true });
  });

  it('two replicas (two clients) share one token limit, and settling frees tokens for both', async () => {
    const a = new RedisTokenLimiter(replicaA, { keyPrefix: 'swy', policy: open, now: () => pinned });
    const b = new RedisTokenLimiter(replicaB, { keyPrefix: 'swy', policy: open, now: () => pinned });
    const decisions = await Promise.all(Array.from({ length: 10 }, (_, index) => (index % 2 ? a : b).reserve('shared', 100, 15)));
    expect(decisions.filter((decision) => decision.allowed)).toHaveLength(6); // 6 × 15 = 90 ≤ 100 < 105
    const granted = decisions.find((decision) => decision.allowed);
    await a.settle(granted?.reservation, 5); // 15 → 5 frees 10
    expect((await b.reserve('shared', 100, 20)).allowed).toBe(true);
    expect((await a.reserve('shared', 100, 1)).allowed).toBe(false);
  });

  it('token buckets are hash-tagged per key and expire after two windows', async () => {
    const limiter = new RedisTokenLimiter(replicaA, { keyPrefix: 'swy', policy: open, now: () => pinned });
    await limiter.reserve('key:7', 100, 10);
    const raw = new Redis(server.url);
    const keys = await raw.keys('*');
    expect(keys).toEqual([`swy:tpm:{key%3A7}:${Math.floor(pinned / minute)}`]);
    const ttl = await raw.pttl(keys[0] ?? '');
    expect(ttl).toBeGreaterThan(minute);
    expect(ttl).toBeLessThanOrEqual(2 * minute - 10_000 + 5_000);
    raw.disconnect();
  });

  it('budgets: checked across replicas, refused with insufficient_quota once spent', async () => {
    const now = () => Date.UTC(2026, 0, 15, 12);
    const a = new RedisBudgetStore(replicaA, { keyPrefix: 'swy', policy: open, now });
    const b = new RedisBudgetStore(replicaB, { keyPrefix: 'swy', policy: open, now });
    const subjects = budgetSubjects({ id: 'key-1', tenant: 'team-a' }, { tenants: { 'team-a': { budget: { amount: 0.01, period: 'month' } } } });
    await a.charge(subjects, 0.004);
    await b.charge(subjects, 0.005);
    expect((await a.reserve(subjects, 0, 60_000)).allowed).toBe(true);
    expect(await b.spent(subjects[0]!)).toBeCloseTo(0.009, 9);
    await b.charge(subjects, 0.001);
    const refused = await a.reserve(subjects, 0, 60_000);
    expect(refused.allowed).toBe(false);
    expect(refused.exhausted?.subject).toMatchObject({ scope: 'tenant', id: 'team-a' });
    const raw = new Redis(server.url);
    expect(await raw.keys('*')).toEqual(['swy:budget:{tenant%3Ateam-a}:m202601']);
    raw.disconnect();
  });

  it('budget reservations: atomic across replicas (40 concurrent holds of 0.1 on a budget of 1 admit exactly 10), settled and released', async () => {
    const now = () => Date.UTC(2026, 0, 15, 12);
    const a = new RedisBudgetStore(replicaA, { keyPrefix: 'swy', policy: open, now });
    const b = new RedisBudgetStore(replicaB, { keyPrefix: 'swy', policy: open, now });
    const subjects = budgetSubjects({ id: 'racer', tenant: 't', budget: { amount: 1, period: 'day' } }, { tenants: {} });
    const decisions = await Promise.all(Array.from({ length: 40 }, (_, index) => (index % 2 ? a : b).reserve(subjects, 0.1, 60_000)));
    const granted = decisions.filter((decision) => decision.allowed);
    expect(granted).toHaveLength(10); // admitted while spent + held < 1: 0, 0.1, … 0.9
    expect(await a.held(subjects[0]!)).toBeCloseTo(1, 9);
    const refused = decisions.find((decision) => !decision.allowed);
    expect(refused?.exhausted).toMatchObject({ spent: 0 });
    expect(budgetSpent(refused!)).toBe(false); // held by calls in flight, not used up
    expect(budgetError(refused!).message).toContain('held by requests in flight');
    // Settle: half cost 0.05 each, half nothing (failed calls).
    await Promise.all(granted.map((decision, index) => (index % 2 ? a : b).settle(decision.reservation, index % 2 ? 0.05 : 0)));
    expect(await b.held(subjects[0]!)).toBe(0);
    expect(await b.spent(subjects[0]!)).toBeCloseTo(0.25, 9);
    const raw = new Redis(server.url);
    expect((await raw.keys('*')).sort()).toEqual(['swy:budget:{key%3Aracer}:d20260115']); // no hold keys left
    raw.disconnect();
  });

  it('budget reservations: a hold a dead replica never settles lapses when its lease ends', async () => {
    let clock = Date.UTC(2026, 0, 15, 12);
    const now = () => clock;
    const crashed = new RedisBudgetStore(replicaA, { keyPrefix: 'swy', policy: open, now });
    const alive = new RedisBudgetStore(replicaB, { keyPrefix: 'swy', policy: open, now });
    const subjects = budgetSubjects({ id: 'k', tenant: 't', budget: { amount: 1, period: 'day' } }, { tenants: {} });
    expect((await crashed.reserve(subjects, 0.7, 30_000)).allowed).toBe(true); // its replica dies: never settled
    const kept = await alive.reserve(subjects, 0.3, 10 * 60_000);
    expect(kept.allowed).toBe(true);
    expect((await alive.reserve(subjects, 0.01, 60_000)).exhausted).toMatchObject({ spent: 0, held: 1 });
    clock += 31_000; // the dead replica's lease is over: the next reservation sweeps its hold
    const later = await alive.reserve(subjects, 0.01, 60_000);
    expect(later.allowed).toBe(true);
    expect(await alive.held(subjects[0]!)).toBeCloseTo(0.31, 9);
    await alive.settle(kept.reservation, 0.2);
    await alive.settle(later.reservation, 0.01);
    expect(await alive.held(subjects[0]!)).toBe(0);
    expect(await alive.spent(subjects[0]!)).toBeCloseTo(0.21, 9);
    // A settle that comes after its lease lapsed charges the cost without releasing anything twice.
    const late = await alive.reserve(subjects, 0.4, 1_000);
    const other = await alive.reserve(subjects, 0.1, 60_000);
    clock += 2_000;
    await alive.reserve(subjects, 0, 60_000); // sweeps the lapsed 0.4
    await alive.settle(late.reservation, 0.3);
    expect(await alive.held(subjects[0]!)).toBeCloseTo(0.1, 9);
    expect(await alive.spent(subjects[0]!)).toBeCloseTo(0.51, 9);
    await alive.settle(other.reservation, 0);
    expect(await alive.held(subjects[0]!)).toBe(0);
  });

  it('keys: create, list, authenticate from another replica, revoke', async () => {
    const storeA = createLimits({ auth: authConfig, limits: limitsConfig('open'), logger, redis: replicaA }).keys;
    const storeB = createLimits({ auth: { ...authConfig, cacheTtlMs: 0 }, limits: limitsConfig('open'), logger, redis: replicaB }).keys;
    const { secret, record } = await createKey(storeA, { tenant: 'team-a', models: ['qwen3-*'], tpm: 1000 });
    expect((await authenticate(storeB, { authorization: `Bearer ${secret}` })).tenant).toBe('team-a');
    expect((await listKeys(new RedisKeyStore(replicaB, 'swy'))).map((key) => key.id)).toEqual([record.id]);
    const raw = new Redis(server.url);
    const dump = JSON.stringify(await raw.hgetall('swy:keys'));
    expect(dump).not.toContain(secret);
    raw.disconnect();
    await revokeKey(storeA, record.id);
    expect((await rejection(authenticate(storeB, { authorization: `Bearer ${secret}` }))).status).toBe(401);
  });

  describe('Redis killed', () => {
    it('onRedisError open: tokens and budgets allow (degraded, counted); closed: 503 limits_unavailable; auth keeps known keys', async () => {
      const errors: string[] = [];
      const onRedisError = (limiter: string, operation: string) => errors.push(`${limiter}:${operation}`);
      const openLimits = createLimits({ auth: { ...authConfig, cacheTtlMs: 0 }, limits: limitsConfig('open'), logger, redis: replicaA, onRedisError });
      const closedLimits = createLimits({ auth: authConfig, limits: limitsConfig('closed'), logger, redis: replicaB, onRedisError });
      const { secret } = await createKey(openLimits.keys, { tenant: 't' });
      await authenticate(openLimits.keys, { authorization: `Bearer ${secret}` }); // remembered by this replica
      const subjects = budgetSubjects({ id: 'k', tenant: 't', budget: { amount: 1, period: 'day' } }, { tenants: {} });

      await server.kill();
      await eventually(async () => replicaA.status !== 'ready' && replicaB.status !== 'ready');

      const started = performance.now();
      const tokens = await openLimits.tokens.reserve('k', 100, 10);
      expect(tokens).toMatchObject({ allowed: true, degraded: true, reservation: undefined });
      await openLimits.tokens.settle(tokens.reservation, 10);
      expect(await openLimits.budgets.reserve(subjects, 0, 60_000)).toMatchObject({ allowed: true, degraded: true });
      await openLimits.budgets.charge(subjects, 0.5); // never throws
      expect(performance.now() - started).toBeLessThan(200);
      expect(errors).toEqual(['tokens:check', 'budget:check', 'budget:settle']);

      const tokenError = await rejection(closedLimits.tokens.reserve('k', 100, 10));
      expect(tokenError).toMatchObject({ status: 503, code: 'limits_unavailable', type: 'server_error' });
      expect((await rejection(closedLimits.budgets.reserve(subjects, 0, 60_000))).status).toBe(503);

      // auth never fails open: a key this replica saw still works (stale), an unknown one gets 503
      expect((await authenticate(openLimits.keys, { authorization: `Bearer ${secret}` })).tenant).toBe('t');
      expect((await rejection(authenticate(closedLimits.keys, { authorization: `Bearer ${secret}` }))).code).toBe('auth_unavailable');

      await server.restart();
      await eventually(async () => (await openLimits.tokens.reserve('k', 100, 10)).degraded === false);
      expect((await closedLimits.tokens.reserve('k', 100, 10)).allowed).toBe(true);
    });
  });
});
