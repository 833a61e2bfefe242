/**
 * Budgets: cost per calendar day or month (UTC), per key and per tenant.
 *
 * Before a call its worst-case cost (prompt estimate + max_tokens at the price
 * of the route's most expensive target) is reserved on every budget that
 * applies, atomically per budget; the call is refused when a budget has no
 * room left (spent + held >= amount). After the call the reservation is
 * settled: the hold is released and the real cost charged. Admission happens
 * only while a budget has room, and each admitted call holds its worst case,
 * so spent + held never exceeds amount + one call's worst case: concurrent
 * calls cannot overspend (issue 13 item 5), as long as a call costs no more
 * than its worst case (max_tokens bounds the answer; the prompt is estimated).
 */
import type { KeyRecord } from './api-keys.ts';
import type { Budget, LimitsConfig } from './config.ts';
import { gatewayError, type GatewayError } from '../errors.ts';

/** One budget to check and charge. */
export interface BudgetSubject {
  scope: 'key' | 'tenant';
  id: string;
  budget: Budget;
}

/** A worst-case cost held on budgets until the call is settled. */
export interface BudgetReservation {
  subjects: readonly BudgetSubject[];
  /** The cost held on every subject. */
  amount: number;
  /** Period tag of each subject when it was reserved (the hold lives in that period). */
  tags: string[];
  /** Unique per reservation (the Redis lease member). */
  id: string;
  /** False when the store could not hold it (Redis failed, onRedisError open): settling only charges. */
  held: boolean;
  settled: boolean;
}

/** The answer of a budget reservation. */
export interface BudgetDecision {
  allowed: boolean;
  /** The first subject without room: spent (charged) and held (by calls in flight) in its current period. */
  exhausted: { subject: BudgetSubject; spent: number; held: number; resetMs: number } | undefined;
  /** Present when allowed and there are budgets: settle it after the call. */
  reservation: BudgetReservation | undefined;
  /** Redis failed and onRedisError: open let it through. */
  degraded: boolean;
}

/** Budget counters. */
export interface BudgetStore {
  /**
   * Holds `worstCase` on every subject when each has room left; nothing is held when one has none.
   * `leaseMs`: the longest the call can run; a hold a crashed replica never settles lapses after it (Redis).
   */
  reserve(subjects: readonly BudgetSubject[], worstCase: number, leaseMs: number): Promise<BudgetDecision>;
  /** Releases the hold and charges the real cost (0: nothing was done). Once only; never throws. */
  settle(reservation: BudgetReservation | undefined, cost: number): Promise<void>;
  /** Adds `cost` to every subject's current period, without a reservation. Never throws. */
  charge(subjects: readonly BudgetSubject[], cost: number): Promise<void>;
  /** Spent in the current period (admin, tests). */
  spent(subject: BudgetSubject): Promise<number>;
  /** Held by unsettled reservations in the current period (admin, tests). */
  held(subject: BudgetSubject): Promise<number>;
}

/** True when a budget has no room for another call: spent plus held reach the amount. */
export function hasNoRoom(spent: number, held: number, budget: Budget): boolean {
  return spent + held >= budget.amount - 1e-9;
}

/** The budgets that apply to a key: its own and its tenant's. */
export function budgetSubjects(record: Pick<KeyRecord, 'id' | 'tenant' | 'budget'>, limits: Pick<LimitsConfig, 'tenants'>): BudgetSubject[] {
  const subjects: BudgetSubject[] = [];
  if (record.budget) subjects.push({ scope: 'key', id: record.id, budget: record.budget });
  const tenantBudget = limits.tenants[record.tenant]?.budget;
  if (tenantBudget) subjects.push({ scope: 'tenant', id: record.tenant, budget: tenantBudget });
  return subjects;
}

/** The current period: a tag for keys (`d20260115`, `m202601`) and its end (epoch ms). */
export function currentPeriod(period: Budget['period'], now: number): { tag: string; endsAt: number } {
  const date = new Date(now);
  const year = date.getUTCFullYear();
  const month = date.getUTCMonth();
  const pad = (value: number) => String(value).padStart(2, '0');
  if (period === 'day') {
    const day = date.getUTCDate();
    return { tag: `d${year}${pad(month + 1)}${pad(day)}`, endsAt: Date.UTC(year, month, day + 1) };
  }
  return { tag: `m${year}${pad(month + 1)}`, endsAt: Date.UTC(year, month + 1, 1) };
}

/** The 429 insufficient_quota for a refused reservation. */
export function budgetError(decision: BudgetDecision): GatewayError {
  const exhausted = decision.exhausted;
  if (!exhausted) return gatewayError('SWY_ERR_INSUFFICIENT_QUOTA');
  const { subject, resetMs } = exhausted;
  const who = subject.scope === 'key' ? `API key ${subject.id}` : `tenant ${subject.id}`;
  const budget = `The ${subject.budget.period === 'day' ? 'daily' : 'monthly'} budget of ${who} (${subject.budget.amount})`;
  if (!budgetSpent(decision)) {
    return gatewayError('SWY_ERR_INSUFFICIENT_QUOTA', {
      message: `${budget} is held by requests in flight (each holds its worst-case cost until it ends). Retry when they finish, or lower max_tokens.`,
      retryAfterSeconds: 1,
    });
  }
  const resetsAt = new Date(Date.now() + resetMs).toISOString();
  return gatewayError('SWY_ERR_INSUFFICIENT_QUOTA', {
    message: `${budget} is used up; it resets at ${resetsAt}. Ask the operator to raise it.`,
    retryAfterSeconds: Math.ceil(resetMs / 1000),
  });
}

/** True when the refusal lasts until the period ends (spent), false when calls in flight hold the budget. */
export function budgetSpent(decision: BudgetDecision): boolean {
  const exhausted = decision.exhausted;
  return !exhausted || !(exhausted.spent + 1e-9 < exhausted.subject.budget.amount && exhausted.held > 0);
}
