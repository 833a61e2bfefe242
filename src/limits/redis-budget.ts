/**
 * Budgets on Redis: one float counter per subject and period,
 * `prefix:budget:{scope:id}:<period tag>`, INCRBYFLOAT with expiry at the
 * period end (plus a minute for clock skew), shared by every replica.
 */
import type { RedisClient } from '../redis/client.ts';
import { hashTag, redisKey } from '../redis/key.ts';
import { LuaScript } from '../redis/script.ts';
import type { BudgetDecision, BudgetStore, BudgetSubject } from './budget.ts';
import { currentPeriod, isExhausted } from './budget.ts';
import type { RedisFailurePolicy } from './redis-policy.ts';

// KEYS: the counter. ARGV: cost, ms until the period ends.
const chargeScript = new LuaScript(`
local spent = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return spent
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

  private counter(subject: BudgetSubject, now: number): { key: string; endsAt: number } {
    const { tag, endsAt } = currentPeriod(subject.budget.period, now);
    return { key: redisKey(this.keyPrefix, 'budget', hashTag(`${subject.scope}:${subject.id}`), tag), endsAt };
  }

  async spent(subject: BudgetSubject): Promise<number> {
    return Number((await this.redis.get(this.counter(subject, this.now()).key)) ?? 0);
  }

  async check(subjects: readonly BudgetSubject[]): Promise<BudgetDecision> {
    if (subjects.length === 0) return { allowed: true, exhausted: undefined, degraded: false };
    const now = this.now();
    let values: Array<string | null>;
    try {
      values = await Promise.all(subjects.map((subject) => this.redis.get(this.counter(subject, now).key)));
    } catch (error) {
      this.policy.checkFailed('budget', error);
      return { allowed: true, exhausted: undefined, degraded: true };
    }
    for (const [index, subject] of subjects.entries()) {
      const spent = Number(values[index] ?? 0);
      if (isExhausted(spent, subject.budget)) {
        return { allowed: false, exhausted: { subject, spent, resetMs: currentPeriod(subject.budget.period, now).endsAt - now }, degraded: false };
      }
    }
    return { allowed: true, exhausted: undefined, degraded: false };
  }

  async charge(subjects: readonly BudgetSubject[], cost: number): Promise<void> {
    if (!(cost > 0) || subjects.length === 0) return;
    const now = this.now();
    try {
      await Promise.all(
        subjects.map((subject) => {
          const { key, endsAt } = this.counter(subject, now);
          return chargeScript.run(this.redis, [key], [cost.toFixed(12), Math.max(1, endsAt - now + 60_000)]);
        }),
      );
    } catch (error) {
      this.policy.settleFailed('budget', error);
    }
  }
}
