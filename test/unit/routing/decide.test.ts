import { describe, expect, it } from 'vitest';
import { decide } from '../../../src/routing/decide.ts';
import { candidate, routeRequest, seeded } from './snapshot.ts';

describe('decide: filters', () => {
  it('drops unhealthy and circuit-open candidates and says why', () => {
    const decision = decide([candidate('down', { healthy: false }), candidate('open', { circuit: 'open', healthy: false }), candidate('up')], routeRequest(), seeded(1));
    expect(decision.order).toEqual(['up']);
    expect(decision.scores.map((score) => [score.backend, score.excluded])).toEqual([
      ['down', 'unhealthy'],
      ['open', 'circuit-open'],
      ['up', undefined],
    ]);
    expect(decision.scores[0]?.predictedTtftMs).toBe(200); // excluded ones still show their figures
  });

  it('sends a request that does not fit a context window elsewhere', () => {
    const request = routeRequest({ promptTokens: 6000, maxTokens: 1000 });
    const decision = decide([candidate('small', { contextLength: 4096 }), candidate('large', { contextLength: 32768 })], request, seeded(2));
    expect(decision.order).toEqual(['large']);
    expect(decision.scores[0]?.excluded).toBe('context-length');
    // An unknown window is assumed to fit: the backend answers for itself.
    expect(decide([candidate('unknown', { contextLength: undefined })], request, seeded(2)).order).toEqual(['unknown']);
  });

  it('rejects with context_length_exceeded when no window fits', () => {
    const request = routeRequest({ promptTokens: 6000, maxTokens: 1000 });
    const decision = decide([candidate('a', { contextLength: 4096 }), candidate('b', { contextLength: 2048, healthy: false })], request, seeded(3));
    expect(decision.order).toEqual([]);
    expect(decision.reject?.code).toBe('context_length_exceeded');
    expect(decision.reject?.message).toContain('4096');
    expect(decision.scores).toHaveLength(2);
  });

  it('answers no_backend_available when only unhealthy ones would fit', () => {
    const request = routeRequest({ promptTokens: 6000, maxTokens: 1000 });
    const decision = decide([candidate('a', { contextLength: 4096 }), candidate('b', { contextLength: 32768, healthy: false })], request, seeded(4));
    expect(decision.reject?.code).toBe('no_backend_available');
    expect(decide([], routeRequest(), seeded(4)).reject?.code).toBe('no_backend_available');
  });

  it('puts candidates at maxConcurrency last, whatever the policy prefers', () => {
    const request = routeRequest({ policy: 'cheapest' });
    const full = candidate('full-cheap', { inflight: 8, maxConcurrency: 8, cost: { outputPer1M: 0.1 } });
    const decision = decide([full, candidate('pricey', { cost: { outputPer1M: 5 } }), candidate('mid', { cost: { outputPer1M: 1 } })], request, seeded(5));
    expect(decision.order).toEqual(['mid', 'pricey', 'full-cheap']);
    expect(decision.reason).toBe('cheapest');
    // When every candidate is full, they are still ordered (the admission queue waits on the first).
    const allFull = decide([full, { ...full, backend: 'full-pricey', cost: { outputPer1M: 5 } }], request, seeded(5));
    expect(allFull.order).toEqual(['full-cheap', 'full-pricey']);
  });

  it('routes on in-flight counts alone when metrics are stale', () => {
    const request = routeRequest({ policy: 'cheapest', slo: { ttftMs: 1000 } });
    const staleCheap = candidate('cheap', { metricsStale: true, queued: 500, running: 4, slots: 4, cost: { outputPer1M: 0.1 } });
    const pricey = candidate('pricey', { cost: { outputPer1M: 5 } });
    expect(decide([staleCheap, pricey], request, seeded(6)).order[0]).toBe('cheap');
    expect(decide([{ ...staleCheap, metricsStale: false }, pricey], request, seeded(6)).order[0]).toBe('pricey');
    expect(decide([{ ...staleCheap, inflight: 6 }, pricey], request, seeded(6)).order[0]).toBe('pricey');
  });
});

describe('decide: half-open circuits', () => {
  it('sends one probe to a half-open backend with nothing in flight', () => {
    const decision = decide([candidate('a'), candidate('recovering', { circuit: 'half-open' })], routeRequest(), seeded(7));
    expect(decision.order).toEqual(['recovering', 'a']);
    expect(decision.reason).toBe('probe');
  });

  it('keeps a half-open backend last while its probe is in flight', () => {
    const probing = candidate('recovering', { circuit: 'half-open', inflight: 1 });
    const decision = decide([probing, candidate('a', { inflight: 5 })], routeRequest(), seeded(8));
    expect(decision.order).toEqual(['a', 'recovering']);
    expect(decision.reason).toBe('least-loaded');
    expect(decide([probing], routeRequest(), seeded(8))).toMatchObject({ order: ['recovering'], reason: 'last-resort' });
  });
});

describe('decide: SLO', () => {
  it('rejects with slo_unmet when no usable candidate meets the SLO and the route says reject', () => {
    const request = routeRequest({ policy: 'fastest', slo: { ttftMs: 300 }, onSloMiss: 'reject' });
    const decision = decide([candidate('a', { ttftMs: 900 }), candidate('b', { ttftMs: 1800 }), candidate('quick', { ttftMs: 50, healthy: false })], request, seeded(9));
    expect(decision.reject).toEqual({ code: 'slo_unmet', message: expect.stringContaining('300 ms'), retryAfterSeconds: 1 });
    expect(decision.order).toEqual([]);
    expect(decision.scores).toHaveLength(3);
  });

  it('serves when one candidate meets it', () => {
    const request = routeRequest({ policy: 'fastest', slo: { ttftMs: 300 }, onSloMiss: 'reject' });
    expect(decide([candidate('a', { ttftMs: 900 }), candidate('b', { ttftMs: 250 })], request, seeded(10)).order).toEqual(['b', 'a']);
  });
});

describe('decide: order and scores', () => {
  it('lists every usable candidate once and scores every candidate', () => {
    const candidates = Array.from({ length: 8 }, (_, index) =>
      candidate(`b${index}`, { inflight: index, healthy: index !== 3, circuit: index === 5 ? 'half-open' : 'closed', maxConcurrency: index === 6 ? 6 : 64 }),
    );
    for (const policy of ['least-loaded', 'cheapest', 'fastest', 'balanced', 'weighted'] as const) {
      const decision = decide(candidates, routeRequest({ policy, affinityKey: 'k' }), seeded(11));
      expect(decision.order.slice().sort()).toEqual(['b0', 'b1', 'b2', 'b4', 'b5', 'b6', 'b7']);
      expect(decision.order.at(-1)).toBe('b5'); // half-open with a probe in flight
      expect(decision.order.at(-2)).toBe('b6'); // at maxConcurrency
      expect(decision.scores.map((score) => score.backend)).toEqual(candidates.map((entry) => entry.backend));
    }
  });

  it('flags a per-hour cost that rests on the prior speed', () => {
    const decision = decide([candidate('gpu', { cost: { perHour: 2 }, tpotMs: undefined, throughputTokensPerSecond: 80 })], routeRequest(), seeded(12));
    expect(decision.scores[0]?.costAssumed).toBe(true);
  });
});
