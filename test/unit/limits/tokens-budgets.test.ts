import { describe, expect, it } from 'vitest';
import { budgetError, budgetSpent, budgetSubjects, currentPeriod } from '../../../src/limits/budget.ts';
import { estimatePromptTokens, reservationTokens } from '../../../src/proxy/estimate.ts';
import { formatResetDuration, rateLimitHeaders, retryAfterHeaders } from '../../../src/limits/headers.ts';
import { MemoryBudgetStore } from '../../../src/limits/memory-budget.ts';
import { MemoryTokenLimiter } from '../../../src/limits/memory-token-limiter.ts';
import { tokenLimitError, waitForFit } from '../../../src/limits/token-window.ts';

const minute = 60_000;
const base = 1_000 * minute; // the start of a bucket

describe('MemoryTokenLimiter (sliding window of two one-minute buckets)', () => {
  it('is exact at its boundary: tpm 100, reserve 60 ok, 41 refused, settle 60→30 frees 30', async () => {
    const now = base + 10_000;
    const limiter = new MemoryTokenLimiter({ now: () => now });
    const first = await limiter.reserve('key-1', 100, 60);
    expect(first).toMatchObject({ allowed: true, limit: 100, remaining: 40, retryAfterMs: 0, degraded: false });
    const refused = await limiter.reserve('key-1', 100, 41);
    expect(refused.allowed).toBe(false);
    expect(refused.remaining).toBe(40);
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.reservation).toBeUndefined();
    expect((await limiter.reserve('key-1', 100, 40)).allowed).toBe(true);
    await limiter.settle(first.reservation, 30);
    await limiter.settle(first.reservation, 0); // a second settle does nothing
    const after = await limiter.reserve('key-1', 100, 30);
    expect(after).toMatchObject({ allowed: true, remaining: 0 });
    expect((await limiter.reserve('key-1', 100, 1)).allowed).toBe(false);
    expect((await limiter.reserve('key-2', 100, 100)).allowed).toBe(true); // keys are separate
  });

  it('charges what was used beyond the reservation, and slides', async () => {
    let now = base;
    const limiter = new MemoryTokenLimiter({ now: () => now });
    const reservation = (await limiter.reserve('k', 100, 10)).reservation;
    await limiter.settle(reservation, 80);
    expect((await limiter.reserve('k', 100, 21)).allowed).toBe(false);
    now = base + minute; // next bucket: 80 still counts fully at its start
    expect((await limiter.reserve('k', 100, 21)).allowed).toBe(false);
    now = base + minute + 30_000; // half of it counts: 40 used
    const decision = await limiter.reserve('k', 100, 60);
    expect(decision.allowed).toBe(true);
    now = base + 3 * minute;
    expect((await limiter.reserve('k', 100, 100)).allowed).toBe(true);
  });

  it('flags requests larger than the limit as never fitting', async () => {
    const limiter = new MemoryTokenLimiter({ now: () => base });
    const decision = await limiter.reserve('k', 100, 101);
    expect(decision).toMatchObject({ allowed: false, tooLarge: true });
    expect(tokenLimitError(decision, 101).message).toMatch(/Request too large/);
    expect(tokenLimitError(decision, 101).status).toBe(429);
  });

  it('computes when a refused request would fit', () => {
    // previous 100 at elapsed 0 → decays to 40 after 36 s; current 0
    expect(waitForFit({ previous: 100, current: 0 }, 0, 100, 60)).toBe(36_000);
    // current 80 → next bucket: must decay to 20 → 45 s into it, 60 s left now
    expect(waitForFit({ previous: 0, current: 80 }, 0, 100, 20 + 1)).toBe(60_000 + Math.ceil(60_000 - (79 * 60_000) / 80));
    expect(waitForFit({ previous: 0, current: 0 }, 0, 100, 101)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('budgets (memory)', () => {
  it('refuses once a key or its tenant has spent its budget, until the period ends', async () => {
    let now = Date.UTC(2026, 0, 15, 12);
    const store = new MemoryBudgetStore({ now: () => now });
    const subjects = budgetSubjects(
      { id: 'key-1', tenant: 'team-a', budget: { amount: 1, period: 'day' } },
      { tenants: { 'team-a': { budget: { amount: 1.5, period: 'month' } } } },
    );
    expect(subjects.map((subject) => subject.scope)).toEqual(['key', 'tenant']);
    expect((await store.reserve(subjects, 0, 60_000)).allowed).toBe(true);
    await store.charge(subjects, 0.6);
    expect((await store.reserve(subjects, 0, 60_000)).allowed).toBe(true);
    await store.charge(subjects, 0.4);
    const refused = await store.reserve(subjects, 0, 60_000);
    expect(refused.allowed).toBe(false);
    expect(refused.exhausted?.subject.scope).toBe('key');
    expect(refused.exhausted?.resetMs).toBe(12 * 3600_000);
    const error = budgetError(refused);
    expect(error.status).toBe(429);
    expect(error.code).toBe('insufficient_quota');
    expect(error.type).toBe('insufficient_quota');
    now = Date.UTC(2026, 0, 16, 1); // new day: the key budget resets, the tenant's month goes on
    expect((await store.reserve(subjects, 0, 60_000)).allowed).toBe(true);
    await store.charge(subjects, 0.5);
    expect((await store.reserve(subjects, 0, 60_000)).exhausted?.subject.scope).toBe('tenant');
  });

  it('holds worst cases while calls are in flight: admits while spent + held < amount, settles the real cost, releases on failure', async () => {
    let now = Date.UTC(2026, 0, 15, 23, 59);
    const store = new MemoryBudgetStore({ now: () => now });
    const subjects = budgetSubjects({ id: 'k', tenant: 't', budget: { amount: 1, period: 'day' } }, { tenants: {} });
    const [key] = subjects;
    const holds = await Promise.all(Array.from({ length: 5 }, () => store.reserve(subjects, 0.4, 60_000)));
    expect(holds.map((decision) => decision.allowed)).toEqual([true, true, true, false, false]); // 0, 0.4, 0.8 had room
    expect(await store.held(key!)).toBeCloseTo(1.2, 12);
    const refused = holds[3]!;
    expect(refused.exhausted).toMatchObject({ spent: 0, held: expect.closeTo(1.2, 9) });
    expect(budgetSpent(refused)).toBe(false);
    expect(budgetError(refused).message).toContain('held by requests in flight');
    await store.settle(holds[0]!.reservation, 0.1); // served: the real cost replaces the hold
    await store.settle(holds[1]!.reservation, 0); // failed: released
    await store.settle(holds[1]!.reservation, 5); // settled once only
    expect(await store.held(key!)).toBeCloseTo(0.4, 12);
    expect(await store.spent(key!)).toBeCloseTo(0.1, 12);
    now = Date.UTC(2026, 0, 16, 0, 1); // settled in the next period: charged there; the old hold ends with its day
    await store.settle(holds[2]!.reservation, 0.3);
    expect(await store.spent(key!)).toBeCloseTo(0.3, 12);
    expect(await store.held(key!)).toBe(0);
    const used = await store.reserve(subjects, 0.8, 60_000);
    await store.settle(used.reservation, 0.8);
    const spentUp = await store.reserve(subjects, 0.01, 60_000);
    expect(spentUp.allowed).toBe(false);
    expect(budgetSpent(spentUp)).toBe(true);
    expect(budgetError(spentUp).message).toContain('used up');
  });

  it('names periods in UTC', () => {
    expect(currentPeriod('day', Date.UTC(2026, 11, 31, 23, 59))).toEqual({ tag: 'd20261231', endsAt: Date.UTC(2027, 0, 1) });
    expect(currentPeriod('month', Date.UTC(2026, 11, 31, 23, 59))).toEqual({ tag: 'm202612', endsAt: Date.UTC(2027, 0, 1) });
  });
});

describe('estimates and headers', () => {
  it('estimates prompt tokens as chars/4 plus per-message overhead', () => {
    expect(estimatePromptTokens({ messages: [{ role: 'user', content: 'x'.repeat(400) }] })).toBe(3 + 4 + 100);
    expect(
      estimatePromptTokens({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'abcd' },
              { type: 'image_url', image_url: { url: 'u' } },
            ],
          },
        ],
      }),
    ).toBe(3 + 4 + 1 + 256);
    expect(estimatePromptTokens({ prompt: 'abcdefgh' })).toBe(2);
    expect(estimatePromptTokens({ input: ['abcd', 'abcd'] })).toBe(2);
    expect(reservationTokens({ prompt: 'abcd', max_tokens: 50 }, 512)).toBe(51);
    expect(reservationTokens({ prompt: 'abcd' }, 512)).toBe(513);
    expect(reservationTokens({ prompt: 'abcd', max_tokens: 10, n: 3 }, 512)).toBe(31);
    expect(reservationTokens({ input: 'abcd' }, 512)).toBe(1);
  });

  it('formats OpenAI rate-limit headers', () => {
    expect(formatResetDuration(0)).toBe('0s');
    expect(formatResetDuration(20)).toBe('20ms');
    expect(formatResetDuration(1_000)).toBe('1s');
    expect(formatResetDuration(360_000)).toBe('6m0s');
    expect(formatResetDuration(3_723_000)).toBe('1h2m3s');
    expect(rateLimitHeaders({ requests: { limit: 10, remaining: 9, resetMs: 59_500 }, tokens: { limit: 1000, remaining: 400.7, resetMs: 1_500 } })).toEqual({
      'x-ratelimit-limit-requests': '10',
      'x-ratelimit-remaining-requests': '9',
      'x-ratelimit-reset-requests': '1m0s',
      'x-ratelimit-limit-tokens': '1000',
      'x-ratelimit-remaining-tokens': '400',
      'x-ratelimit-reset-tokens': '2s',
    });
    expect(retryAfterHeaders(1_200)).toEqual({ 'retry-after': '2', 'retry-after-ms': '1200' });
    expect(retryAfterHeaders(5, false)).toEqual({ 'retry-after': '1', 'retry-after-ms': '5', 'x-should-retry': 'false' });
  });
});
