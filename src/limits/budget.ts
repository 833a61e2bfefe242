/**
 * Budgets: cost per calendar day or month (UTC), per key and per tenant.
 * Checked before a call (refused once spent >= amount), charged after it
 * with the real cost. Concurrent calls that pass the check together may
 * overspend by their own cost: a budget is a spending cap, not a reservation.
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

/** The answer of a budget check. */
export interface BudgetDecision {
  allowed: boolean;
  /** The first subject whose budget is used up. */
  exhausted: { subject: BudgetSubject; spent: number; resetMs: number } | undefined;
  /** Redis failed and onRedisError: open let it through. */
  degraded: boolean;
}

/** Budget counters. */
export interface BudgetStore {
  check(subjects: readonly BudgetSubject[]): Promise<BudgetDecision>;
  /** Adds `cost` to every subject's current period. Never throws. */
  charge(subjects: readonly BudgetSubject[], cost: number): Promise<void>;
  /** Spent in the current period (admin, tests). */
  spent(subject: BudgetSubject): Promise<number>;
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

/** True when this spend exhausts the budget. */
export function isExhausted(spent: number, budget: Budget): boolean {
  return spent >= budget.amount - 1e-9;
}

/** The 429 insufficient_quota for a refused check. */
export function budgetError(decision: BudgetDecision): GatewayError {
  const exhausted = decision.exhausted;
  if (!exhausted) return gatewayError('SWY_ERR_INSUFFICIENT_QUOTA');
  const { subject, resetMs } = exhausted;
  const who = subject.scope === 'key' ? `API key ${subject.id}` : `tenant ${subject.id}`;
  const resetsAt = new Date(Date.now() + resetMs).toISOString();
  return gatewayError('SWY_ERR_INSUFFICIENT_QUOTA', {
    message: `The ${subject.budget.period === 'day' ? 'daily' : 'monthly'} budget of ${who} (${subject.budget.amount}) is used up; it resets at ${resetsAt}. Ask the operator to raise it.`,
    retryAfterSeconds: Math.ceil(resetMs / 1000),
  });
}
