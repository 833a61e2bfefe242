import { describe, expect, it } from 'vitest';
import { affinityKeyFor } from '../../../src/routing/affinity.ts';
import { decide } from '../../../src/routing/decide.ts';
import type { PolicyName } from '../../../src/routing/types.ts';
import { candidate, routeRequest, seeded } from './snapshot.ts';

// The shape bench/ times: 16 candidates with mixed load, prices and signals. No timing asserts here.
const candidates = Array.from({ length: 16 }, (_, index) =>
  candidate(`backend-${index}`, {
    inflight: index % 5,
    queued: index % 3 === 0 ? undefined : index % 4,
    running: index % 3 === 0 ? undefined : 4,
    metricsStale: index % 3 === 0,
    slots: index % 2 === 0 ? 4 : undefined,
    ttftMs: 150 + index * 10,
    tpotMs: 15 + index,
    weight: 1 + (index % 3),
    cost: index % 4 === 0 ? { perHour: 2 + index } : { inputPer1M: 0.1 * index, outputPer1M: 0.3 * index },
    throughputTokensPerSecond: index % 8 === 0 ? undefined : 800,
  }),
);

describe('decide() on 16 candidates', () => {
  it('completes 10,000 decisions for every policy', () => {
    const random = seeded(5);
    const affinityKey = affinityKeyFor({ messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello' }] });
    for (const policy of ['least-loaded', 'cheapest', 'fastest', 'balanced', 'weighted'] as PolicyName[]) {
      const request = routeRequest({ policy, affinityKey, slo: { ttftMs: 2000 } });
      let first = 0;
      for (let run = 0; run < 10_000; run++) if (decide(candidates, request, random).order.length === 16) first++;
      expect(first).toBe(10_000);
    }
  });
});
