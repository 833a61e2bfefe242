import { describe, expect, it } from 'vitest';
import { decide } from '../../../src/routing/decide.ts';
import type { CandidateState } from '../../../src/routing/types.ts';
import { candidate, routeRequest, seeded, tally, viaDecide } from './snapshot.ts';

const cheapest = viaDecide('cheapest');

// A cheap-but-slow llama.cpp box with 4 slots and a fast-but-expensive backend.
function cheapBox(queued: number, running: number): CandidateState {
  return candidate('cheap', { slots: 4, queued, running, ttftMs: 300, tpotMs: 40, cost: { inputPer1M: 0.1, outputPer1M: 0.2 } });
}
const expensive = candidate('expensive', { ttftMs: 100, tpotMs: 10, cost: { inputPer1M: 2, outputPer1M: 6 } });
const withSlo = routeRequest({ policy: 'cheapest', slo: { ttftMs: 2000 } });

describe('cheapest', () => {
  it('stays on the cheap backend while its predicted TTFT meets the SLO', () => {
    const random = seeded(1);
    for (const running of [0, 1, 2, 3]) {
      const decision = cheapest([cheapBox(0, running), expensive], withSlo, random);
      expect(decision.order).toEqual(['cheap', 'expensive']);
      expect(decision.reason).toBe('cheapest-within-slo');
    }
  });

  it('shifts to the expensive backend when the queue makes the cheap one miss, and comes back when it drains', () => {
    const random = seeded(2);
    const loaded = cheapest([cheapBox(8, 4), expensive], withSlo, random);
    expect(loaded.order).toEqual(['expensive', 'cheap']);
    expect(loaded.reason).toBe('cheapest-within-slo');
    const cheapScore = loaded.scores.find((score) => score.backend === 'cheap');
    expect(cheapScore?.predictedTtftMs).toBeGreaterThan(2000);
    const drained = cheapest([cheapBox(0, 2), expensive], withSlo, random);
    expect(drained.order[0]).toBe('cheap');
  });

  it('takes the fastest predicted one when none meets the SLO', () => {
    const slowExpensive = { ...expensive, queued: 200, running: 64, ttftMs: 400 };
    const decision = cheapest([cheapBox(8, 4), slowExpensive], withSlo, seeded(3));
    expect(decision.reason).toBe('fastest-slo-miss');
    const [first, second] = decision.scores.slice().sort((left, right) => left.predictedTtftMs - right.predictedTtftMs);
    expect(decision.order).toEqual([first?.backend, second?.backend]);
  });

  it('rejects with slo_unmet and a retry-after when the route says so', () => {
    const request = { ...withSlo, onSloMiss: 'reject' as const };
    const decision = cheapest([cheapBox(8, 4)], request, seeded(4));
    expect(decision.order).toEqual([]);
    expect(decision.reject?.code).toBe('slo_unmet');
    const predicted = decision.scores[0]?.predictedTtftMs ?? 0;
    expect(decision.reject?.retryAfterSeconds).toBe(Math.min(60, Math.ceil((predicted - 2000) / 1000)));
    // The same route serves normally when the cheap box meets the SLO.
    expect(cheapest([cheapBox(0, 0)], request, seeded(4)).reject).toBeUndefined();
  });

  it('holds the TPOT objective too when the route sets one', () => {
    const request = routeRequest({ policy: 'cheapest', slo: { ttftMs: 2000, tpotMs: 30 } });
    expect(cheapest([cheapBox(0, 0), expensive], request, seeded(5)).order[0]).toBe('expensive');
  });

  it('is plain cheapest without an SLO', () => {
    const decision = cheapest([expensive, cheapBox(50, 4)], routeRequest({ policy: 'cheapest' }), seeded(6));
    expect(decision.order).toEqual(['cheap', 'expensive']);
    expect(decision.reason).toBe('cheapest');
    expect(decision.scores.map((score) => score.score)).toEqual(decision.scores.map((score) => score.costPer1M));
  });

  it('spreads over equally cheap backends, leaning to the one that answers sooner', () => {
    const request = routeRequest({ policy: 'cheapest' });
    const random = seeded(8);
    const equal = [candidate('a'), candidate('b')];
    const even = tally(1000, () => cheapest(equal, request, random).order[0]);
    expect(even.get('a')).toBeGreaterThan(400);
    expect(even.get('b')).toBeGreaterThan(400);
    const busier = [candidate('a', { slots: 1, running: 1 }), candidate('b')];
    const leaning = tally(1000, () => cheapest(busier, request, random).order[0]);
    // Two draws with replacement from two: the quicker one wins 3 times in 4.
    expect(leaning.get('b') ?? 0).toBeGreaterThan(680);
    expect(leaning.get('a') ?? 0).toBeGreaterThan(180);
  });

  it('follows the load through decide(): shift and return', () => {
    const random = seeded(7);
    const load: [number, number][] = [
      [0, 1],
      [0, 3],
      [2, 4],
      [8, 4],
      [1, 4],
      [0, 2],
      [0, 0],
    ];
    const steps = load.map(([queued, running]) => decide([cheapBox(queued, running), expensive], withSlo, random).order[0]);
    expect(steps).toEqual(['cheap', 'cheap', 'expensive', 'expensive', 'expensive', 'cheap', 'cheap']);
  });
});
