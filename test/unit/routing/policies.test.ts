import { describe, expect, it } from 'vitest';
import { decide } from '../../../src/routing/decide.ts';
import { policyNames } from '../../../src/routing/types.ts';
import { candidate, routeRequest, seeded, tally, viaDecide } from './snapshot.ts';

const leastLoaded = viaDecide('least-loaded');
const fastest = viaDecide('fastest');
const balanced = viaDecide('balanced');
const weighted = viaDecide('weighted');

describe('least-loaded', () => {
  const request = routeRequest();

  it('picks the smallest share of maxConcurrency in use', () => {
    const decision = leastLoaded([candidate('a', { inflight: 10 }), candidate('b', { inflight: 2 }), candidate('c', { inflight: 4, maxConcurrency: 8 })], request, seeded(1));
    expect(decision.order).toEqual(['b', 'a', 'c']);
    expect(decision.reason).toBe('least-loaded');
  });

  it('counts queue and running from fresh metrics when they exceed in-flight', () => {
    const decision = leastLoaded([candidate('a', { queued: 30, running: 10 }), candidate('b', { inflight: 5 })], request, seeded(2));
    expect(decision.order[0]).toBe('b');
  });

  it('breaks ties at random', () => {
    const random = seeded(3);
    const counts = tally(1000, () => leastLoaded([candidate('a'), candidate('b'), candidate('c')], request, random).order[0]);
    for (const backend of ['a', 'b', 'c']) expect(counts.get(backend) ?? 0).toBeGreaterThan(280);
  });
});

describe('fastest', () => {
  it('uses predicted TTFT + maxTokens × TPOT', () => {
    const quickStart = candidate('quick-start', { ttftMs: 100, tpotMs: 40 });
    const quickDecode = candidate('quick-decode', { ttftMs: 200, tpotMs: 20 });
    const long = fastest([quickStart, quickDecode], routeRequest({ policy: 'fastest', maxTokens: 100 }), seeded(1));
    expect(long.order).toEqual(['quick-decode', 'quick-start']); // 2,200 ms against 4,100 ms
    expect(long.scores.map((score) => score.score)).toEqual([4100, 2200]);
    const short = fastest([quickStart, quickDecode], routeRequest({ policy: 'fastest', maxTokens: 1 }), seeded(1));
    expect(short.order[0]).toBe('quick-start'); // 140 ms against 220 ms
    expect(short.reason).toBe('fastest');
  });

  it('moves off a backend whose queue grows', () => {
    const request = routeRequest({ policy: 'fastest' });
    const a = candidate('a', { ttftMs: 100, slots: 2 });
    const b = candidate('b', { ttftMs: 300, slots: 2 });
    expect(fastest([a, b], request, seeded(2)).order[0]).toBe('a');
    expect(fastest([{ ...a, running: 2, queued: 3 }, b], request, seeded(2)).order[0]).toBe('b');
  });

  it('spreads near-ties, leaning to the cheaper backend', () => {
    const random = seeded(3);
    const request = routeRequest({ policy: 'fastest' });
    const pricey = candidate('pricey', { ttftMs: 204, cost: { outputPer1M: 5 } });
    const cheap = candidate('cheap', { ttftMs: 206, cost: { outputPer1M: 1 } });
    const counts = tally(1000, () => fastest([pricey, cheap], request, random).order[0]);
    expect(counts.get('cheap') ?? 0).toBeGreaterThan(680);
    expect(counts.get('pricey') ?? 0).toBeGreaterThan(180);
  });
});

describe('identical idle backends', () => {
  it('take turns by the requests each got lately instead of splitting by coin toss', () => {
    const random = seeded(5);
    for (const policy of ['cheapest', 'fastest', 'balanced'] as const) {
      const route = viaDecide(policy);
      const request = routeRequest({ policy, maxTokens: 50 });
      const sent = new Map([
        ['a', 0],
        ['b', 0],
      ]);
      for (let turn = 0; turn < 40; turn++) {
        const both = ['a', 'b'].map((id) => candidate(id, { ttftMs: 200, tpotMs: 10, cost: { perHour: 1 }, recentSent: sent.get(id) }));
        const chosen = route(both, request, random).order[0] as string;
        sent.set(chosen, (sent.get(chosen) ?? 0) + 1);
      }
      expect([sent.get('a'), sent.get('b')], policy).toEqual([20, 20]);
    }
  });
});

describe('balanced', () => {
  // Latency over a 100-token budget: cheap 1,000 + 100 × 30 = 4,000 ms; fast 500 + 100 × 5 = 1,000 ms.
  const cheapSlow = (price: number) => candidate('cheap', { ttftMs: 1000, tpotMs: 30, cost: { inputPer1M: price, outputPer1M: price } });
  const fastPricey = candidate('fast', { ttftMs: 500, tpotMs: 5, cost: { inputPer1M: 10, outputPer1M: 10 } });
  const at = (costWeight: number) => routeRequest({ policy: 'balanced', costWeight, maxTokens: 100 });

  it('is fastest at costWeight 0 and cheapest at costWeight 1', () => {
    expect(balanced([cheapSlow(1), fastPricey], at(0), seeded(1)).order).toEqual(['fast', 'cheap']);
    expect(balanced([cheapSlow(1), fastPricey], at(1), seeded(1)).order).toEqual(['cheap', 'fast']);
  });

  it('weighs log cost and latency ratios against the best candidate at costWeight 0.5', () => {
    // 10× cheaper, 4× slower: 0.5 × ln 1 + 0.5 × ln 4 = 0.69 against 0.5 × ln 10 + 0.5 × ln 1 = 1.15.
    const tenfold = balanced([cheapSlow(1), fastPricey], at(0.5), seeded(2));
    expect(tenfold.order[0]).toBe('cheap');
    expect(tenfold.scores.map((score) => score.score)).toEqual([expect.closeTo(Math.log(4) / 2), expect.closeTo(Math.log(10) / 2)]);
    // Only 2× cheaper, still 4× slower: 0.5 × ln 4 = 0.69 against 0.5 × ln 2 = 0.35.
    expect(balanced([cheapSlow(5), fastPricey], at(0.5), seeded(2)).order[0]).toBe('fast');
    expect(balanced([cheapSlow(5), fastPricey], at(0.5), seeded(2)).reason).toBe('balanced');
  });

  it('moves smoothly from fastest to cheapest as costWeight grows', () => {
    // 10× cheaper, 4× slower: cheap wins once w × ln 10 > (1 − w) × ln 4, i.e. w > 0.376.
    const winners = [0, 0.2, 0.35, 0.4, 0.6, 1].map((weight) => balanced([cheapSlow(1), fastPricey], at(weight), seeded(3)).order[0]);
    expect(winners).toEqual(['fast', 'fast', 'fast', 'cheap', 'cheap', 'cheap']);
  });

  it('predicts the same answer on identical backends that happened to get answers of different lengths', () => {
    // Backend `a` saw answers of 100 tokens lately, `b` of 130: on their own figures `a` looks 1.3× faster.
    const box = (id: string, outputTokens: number) => candidate(id, { ttftMs: 100, tpotMs: 10, outputTokens, cost: { inputPer1M: 1, outputPer1M: 1 } });
    const ownFigures = routeRequest({ policy: 'balanced', costWeight: 0.5, maxTokens: 512 });
    expect(tally(200, () => balanced([box('a', 100), box('b', 130)], ownFigures, seeded(5)).order[0]).get('a')).toBe(200);
    // The route's typical answer (what the router passes) is the same for both: they tie and take turns.
    const routeFigure = routeRequest({ policy: 'balanced', costWeight: 0.5, maxTokens: 512, outputTokens: 115 });
    const decision = balanced([box('a', 100), box('b', 130)], routeFigure, seeded(5));
    expect(decision.scores.map((score) => score.score)).toEqual([0, 0]);
    const random = seeded(6);
    const counts = tally(400, () => balanced([box('a', 100), box('b', 130)], routeFigure, random).order[0]);
    expect(Math.abs((counts.get('a') ?? 0) - 200)).toBeLessThanOrEqual(40);
  });

  it('ranks candidates predicted to meet the SLO before those predicted to miss it', () => {
    const slow = candidate('cheap', { ttftMs: 3000, tpotMs: 30, cost: { inputPer1M: 1, outputPer1M: 1 } });
    const decision = balanced([slow, fastPricey], routeRequest({ policy: 'balanced', costWeight: 0.9, maxTokens: 100, slo: { ttftMs: 1000 } }), seeded(4));
    expect(decision.order).toEqual(['fast', 'cheap']);
  });
});

describe('weighted', () => {
  const request = routeRequest({ policy: 'weighted' });
  const split = [candidate('stable', { weight: 70 }), candidate('canary', { weight: 10 }), candidate('other', { weight: 20 })];

  it('splits 1,000 requests within 3% of the weights', () => {
    const random = seeded(42);
    const counts = tally(1000, () => weighted(split, request, random).order[0]);
    expect(Math.abs((counts.get('stable') ?? 0) / 1000 - 0.7)).toBeLessThanOrEqual(0.03);
    expect(Math.abs((counts.get('other') ?? 0) / 1000 - 0.2)).toBeLessThanOrEqual(0.03);
    expect(Math.abs((counts.get('canary') ?? 0) / 1000 - 0.1)).toBeLessThanOrEqual(0.03);
  });

  it('lists every target for failover, by descending weight after the draw', () => {
    const decision = weighted(split, request, () => 0.75); // 0.75 × 100 = 75 → past stable (70), into canary
    expect(decision.order).toEqual(['canary', 'stable', 'other']);
    expect(decision.reason).toBe('weighted');
    expect(decision.scores.map((score) => score.score)).toEqual([0.7, 0.1, 0.2]);
  });

  it('never draws a zero weight, and is least-loaded when every weight is zero', () => {
    const random = seeded(7);
    const counts = tally(500, () => weighted([candidate('off', { weight: 0 }), candidate('on', { weight: 1 })], request, random).order[0]);
    expect(counts.get('off')).toBeUndefined();
    const zero = weighted([candidate('a', { weight: 0, inflight: 3 }), candidate('b', { weight: 0 })], request, random);
    expect(zero.order).toEqual(['b', 'a']);
  });
});

describe('every policy name', () => {
  it('is one decide() knows, and each lists all candidates under its own reason', () => {
    const candidates = [candidate('a'), candidate('b', { inflight: 3 }), candidate('c', { ttftMs: 900 })];
    const reasons = new Set<string>();
    for (const name of policyNames) {
      const decision = decide(candidates, routeRequest({ policy: name }), seeded(9));
      expect(decision.order.slice().sort(), name).toEqual(['a', 'b', 'c']);
      expect(decision.scores, name).toHaveLength(3);
      expect(decision.reject, name).toBeUndefined();
      reasons.add(decision.reason);
    }
    expect(reasons.size).toBe(policyNames.length);
  });

  it('lists every candidate with an affinity key and an SLO over mixed signals too', () => {
    // Stale metrics, llama.cpp slots, an unmeasured perHour cost: the shape bench/micro.ts times.
    const mixed = Array.from({ length: 8 }, (_, index) =>
      candidate(`backend-${index}`, {
        inflight: index % 5,
        queued: index % 3 === 0 ? undefined : index % 4,
        running: index % 3 === 0 ? undefined : 4,
        metricsStale: index % 3 === 0,
        slots: index % 2 === 0 ? 4 : undefined,
        ttftMs: 150 + index * 10,
        weight: 1 + (index % 3),
        cost: index % 4 === 0 ? { perHour: 2 + index } : { inputPer1M: 0.1 * index, outputPer1M: 0.3 * index },
        throughputTokensPerSecond: index === 0 ? undefined : 800,
      }),
    );
    for (const name of policyNames) {
      const decision = decide(mixed, routeRequest({ policy: name, affinityKey: 'a1b2c3d4e5f6', slo: { ttftMs: 2000 } }), seeded(5));
      expect(decision.order.slice().sort(), name).toEqual(mixed.map((entry) => entry.backend).sort());
    }
  });
});
