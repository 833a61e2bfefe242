/**
 * Budgets on Redis, shared by every replica. Per subject and period, under one
 * Cluster hash tag `{scope:id}`:
 * - `prefix:budget:{scope:id}:<tag>`: spent, a float (INCRBYFLOAT);
 * - `…:<tag>:held`: the sum of the worst cases held by calls in flight;
 * - `…:<tag>:leases`: those holds, member `<id>|<amount>`, score = when the hold lapses.
 * Reserve and settle are atomic Lua per subject. A replica that dies mid-call
 * never settles; its hold lapses when its lease (the longest the call could
 * run) ends and the next reservation on that budget sweeps it. Every key
 * expires a minute after its period ends.
 */
import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../redis/client.ts';
import { hashTag, redisKey } from '../redis/key.ts';
import { LuaScript } from '../redis/script.ts';
import type { BudgetDecision, BudgetReservation, BudgetStore, BudgetSubject } from './budget.ts';
import { currentPeriod } from './budget.ts';
import type { RedisFailurePolicy } from './redis-policy.ts';

// KEYS: spent, held, leases. ARGV: budget amount, worst case, lease member, lease end (ms), now (ms), key ttl (ms).
// Sweeps lapsed leases, refuses when spent + held >= amount, else holds the worst case. Replies are strings
// (Redis would truncate Lua numbers to integers).
const reserveScript = new LuaScript(`
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[5])
if #lapsed > 0 then
  local freed = 0
  for _, member in ipairs(lapsed) do freed = freed + tonumber(string.match(member, '|(.*)$')) end
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[5])
  if redis.call('ZCARD', KEYS[3]) == 0 then redis.call('DEL', KEYS[2]) else redis.call('INCRBYFLOAT', KEYS[2], -freed) end
end
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local held = tonumber(redis.call('GET', KEYS[2]) or '0')
if spent + held >= tonumber(ARGV[1]) - 1e-9 then return {0, tostring(spent), tostring(held)} end
if tonumber(ARGV[2]) > 0 then
  held = tonumber(redis.call('INCRBYFLOAT', KEYS[2], ARGV[2]))
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
  redis.call('PEXPIRE', KEYS[3], ARGV[6])
end
return {1, tostring(spent), tostring(held)}
`);

// KEYS: held, leases (of the period reserved in), spent (current period). ARGV: lease member, cost, spent ttl (ms).
// Releases the hold if its lease is still there (a lapsed one was already swept), then charges the cost.
const settleScript = new LuaScript(`
if ARGV[1] ~= '' and redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  if redis.call('ZCARD', KEYS[2]) == 0 then
    redis.call('DEL', KEYS[1])
  else
    redis.call('INCRBYFLOAT', KEYS[1], -tonumber(string.match(ARGV[1], '|(.*)$')))
  end
end
if tonumber(ARGV[2]) > 0 then
  redis.call('INCRBYFLOAT', KEYS[3], ARGV[2])
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
return 1
`);

/** Redis budget counters. */
export class RedisBudgetStore implements BudgetStore {
  private readonly redis: RedisClient;
  private readonly keyPrefix: string;
  private readonly policy: RedisFailurePolicy;
  private readonly now: () => number;

  constructor(redis: RedisClient, options: { keyPrefix: string; policy: RedisFailurePolicy; now?: () => number }) {
    this.redis = redis;
    this.keyPrefix = options.keyPrefix;
    this.policy = options.policy;
    this.now = options.now ?? Date.now;
  }

  private spentKey(subject: BudgetSubject, tag: string): string {
    return redisKey(this.keyPrefix, 'budget', hashTag(`${subject.scope}:${subject.id}`), tag);
  }

  /** Keys live until a minute after the period ends (clock skew between replicas). */
  private static ttl(endsAt: number, now: number): number {
    return Math.max(1, endsAt - now + 60_000);
  }

  async spent(subject: BudgetSubject): Promise<number> {
    return Number((await this.redis.get(this.spentKey(subject, currentPeriod(subject.budget.period, this.now()).tag))) ?? 0);
  }

  async held(subject: BudgetSubject): Promise<number> {
    return Number((await this.redis.get(`${this.spentKey(subject, currentPeriod(subject.budget.period, this.now()).tag)}:held`)) ?? 0);
  }

  async reserve(subjects: readonly BudgetSubject[], worstCase: number, leaseMs: number): Promise<BudgetDecision> {
    if (subjects.length === 0) return { allowed: true, exhausted: undefined, reservation: undefined, degraded: false };
    const now = this.now();
    const amount = Math.max(0, worstCase);
    const id = randomUUID();
    const member = `${id}|${amount}`;
    const periods = subjects.map((subject) => currentPeriod(subject.budget.period, now));
    const reservation: BudgetReservation = { subjects, amount, tags: periods.map((period) => period.tag), id, held: true, settled: false };
    // One script per budget (a key's and its tenant's budgets live on different Cluster slots), sent together.
    const replies = await Promise.allSettled(
      subjects.map((subject, index) => {
        const period = periods[index] as { tag: string; endsAt: number };
        const spent = this.spentKey(subject, period.tag);
        return reserveScript.run(
          this.redis,
          [spent, `${spent}:held`, `${spent}:leases`],
          [subject.budget.amount, String(amount), member, now + leaseMs, now, RedisBudgetStore.ttl(period.endsAt, now)],
        );
      }),
    );
    let failure: unknown;
    let refused: BudgetDecision['exhausted'];
    const granted: number[] = [];
    replies.forEach((reply, index) => {
      if (reply.status === 'rejected') {
        failure ??= reply.reason;
        return;
      }
      const [allowed, spent, held] = (reply.value as string[]).map(Number);
      if (allowed === 1) granted.push(index);
      else if (!refused) {
        const subject = subjects[index] as BudgetSubject;
        const period = periods[index] as { endsAt: number };
        refused = { subject, spent: spent ?? 0, held: held ?? 0, resetMs: period.endsAt - now };
      }
    });
    if (failure === undefined && refused === undefined) return { allowed: true, exhausted: undefined, reservation, degraded: false };
    // Not every budget took it: give back the holds that were taken.
    if (granted.length > 0) await this.release(reservation, granted);
    if (refused) return { allowed: false, exhausted: refused, reservation: undefined, degraded: false };
    this.policy.checkFailed('budget', failure); // throws when onRedisError is closed
    return { allowed: true, exhausted: undefined, reservation: { ...reservation, held: false }, degraded: true };
  }

  async settle(reservation: BudgetReservation | undefined, cost: number): Promise<void> {
    if (!reservation || reservation.settled) return;
    reservation.settled = true;
    if (!reservation.held) {
      await this.charge(reservation.subjects, cost);
      return;
    }
    await this.release(
      reservation,
      reservation.subjects.map((_, index) => index),
      cost,
    );
  }

  /** Releases the holds of the subjects at `indexes` and charges `cost` to their current period. */
  private async release(reservation: BudgetReservation, indexes: number[], cost = 0): Promise<void> {
    const now = this.now();
    const member = reservation.amount > 0 ? `${reservation.id}|${reservation.amount}` : '';
    if (member === '' && !(cost > 0)) return;
    try {
      await Promise.all(
        indexes.map((index) => {
          const subject = reservation.subjects[index] as BudgetSubject;
          const reserved = this.spentKey(subject, reservation.tags[index] ?? '');
          const period = currentPeriod(subject.budget.period, now);
          return settleScript.run(
            this.redis,
            [`${reserved}:held`, `${reserved}:leases`, this.spentKey(subject, period.tag)],
            [member, cost > 0 ? cost.toPrecision(15) : '0', RedisBudgetStore.ttl(period.endsAt, now)],
          );
        }),
      );
    } catch (error) {
      this.policy.settleFailed('budget', error);
    }
  }

  async charge(subjects: readonly BudgetSubject[], cost: number): Promise<void> {
    if (!(cost > 0) || subjects.length === 0) return;
    const now = this.now();
    try {
      await Promise.all(
        subjects.map((subject) => {
          const period = currentPeriod(subject.budget.period, now);
          const spent = this.spentKey(subject, period.tag);
          // No lease member: the hold keys are only named (one Cluster slot), not touched.
          return settleScript.run(this.redis, [`${spent}:held`, `${spent}:leases`, spent], ['', cost.toPrecision(15), RedisBudgetStore.ttl(period.endsAt, now)]);
        }),
      );
    } catch (error) {
      this.policy.settleFailed('budget', error);
    }
  }
}
