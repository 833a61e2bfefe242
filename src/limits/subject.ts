/**
 * The limits that apply to one request: its key's own, else `limits.defaults`.
 * With `auth.mode: none` there is no key: every request is the subject
 * `anonymous` of tenant `default`, so the defaults act as gateway-wide limits
 * and `limits.tenants.default.budget` as the gateway-wide budget.
 */
import type { KeyRecord } from './api-keys.ts';
import type { BudgetSubject } from './budget.ts';
import { budgetSubjects } from './budget.ts';
import type { LimitsConfig } from './config.ts';

/** Who a request counts against, and how much it may use. */
export interface LimitSubject {
  /** Key id (or `anonymous`): the subject of request and token limits. */
  id: string;
  tenant: string;
  rpm: number | undefined;
  tpm: number | undefined;
  budgets: BudgetSubject[];
}

export const anonymousSubjectId = 'anonymous';
const defaultTenant = 'default';

/** Resolves the request's limits from its key record (undefined with auth.mode none). */
export function limitSubject(record: KeyRecord | undefined, limits: LimitsConfig): LimitSubject {
  if (!record) {
    const budgets = budgetSubjects({ id: anonymousSubjectId, tenant: defaultTenant, budget: undefined }, limits);
    return { id: anonymousSubjectId, tenant: defaultTenant, rpm: limits.defaults.rpm, tpm: limits.defaults.tpm, budgets };
  }
  return {
    id: record.id,
    tenant: record.tenant,
    rpm: record.rpm ?? limits.defaults.rpm,
    tpm: record.tpm ?? limits.defaults.tpm,
    budgets: budgetSubjects(record, limits),
  };
}
