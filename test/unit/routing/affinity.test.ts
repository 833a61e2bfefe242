import { describe, expect, it } from 'vitest';
import { affinityKeyFor, LOAD_BOUND_SLACK, withinLoadBound } from '../../../src/routing/affinity.ts';
import { decide } from '../../../src/routing/decide.ts';
import type { CandidateState, PolicyName } from '../../../src/routing/types.ts';
import { candidate, routeRequest, seeded } from './snapshot.ts';

const system = { role: 'system', content: 'You are a helpful assistant for ACME support.' };

describe('affinity key', () => {
  it('keeps a conversation on one key from its first turn on', () => {
    const turn1 = affinityKeyFor({ messages: [system, { role: 'user', content: 'My order is late.' }] });
    const turn2 = affinityKeyFor({
      messages: [system, { role: 'user', content: 'My order is late.' }, { role: 'assistant', content: 'Sorry!' }, { role: 'user', content: 'Where is it?' }],
    });
    expect(turn1).toMatch(/^[0-9a-f]{16}$/);
    expect(turn2).toBe(turn1);
    // Without a system prompt too: the key stops before the first assistant turn.
    const bare1 = affinityKeyFor({ messages: [{ role: 'user', content: 'hi' }] });
    const bare2 = affinityKeyFor({
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'hello' },
        { role: 'user', content: 'more' },
      ],
    });
    expect(bare2).toBe(bare1);
  });

  it('separates conversations and honours prefixMessages and prefixChars', () => {
    const a = { messages: [system, { role: 'user', content: 'question A' }] };
    const b = { messages: [system, { role: 'user', content: 'question B' }] };
    expect(affinityKeyFor(a)).not.toBe(affinityKeyFor(b));
    expect(affinityKeyFor(a, { prefixMessages: 1 })).toBe(affinityKeyFor(b, { prefixMessages: 1 }));
    expect(affinityKeyFor(a, { prefixChars: 20 })).toBe(affinityKeyFor(b, { prefixChars: 20 }));
  });

  it('reads content parts, prompts and token ids', () => {
    const parts = {
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'describe' },
            { type: 'image_url', image_url: { url: 'data:x' } },
          ],
        },
      ],
    };
    expect(affinityKeyFor(parts)).toBeDefined();
    expect(affinityKeyFor({ prompt: 'Once upon a time' })).toBe(affinityKeyFor({ prompt: ['Once upon a time', 'other'] }));
    expect(affinityKeyFor({ prompt: [1, 2, 3] })).toBe(affinityKeyFor({ prompt: [[1, 2, 3]] }));
    expect(affinityKeyFor({ prompt: 'Once upon a time' })).not.toBe(affinityKeyFor({ messages: [{ role: '', content: 'Once upon a time' }] }));
    expect(affinityKeyFor({ messages: [] })).toBeUndefined();
    expect(affinityKeyFor({ input: 'embedding text' })).toBeUndefined();
  });
});

/** The key's home as decide() picks it among idle candidates (it goes first, reason `affinity`). */
function homeOf(candidates: readonly CandidateState[], key: string, policy: PolicyName = 'least-loaded'): string | undefined {
  const decision = decide(candidates, routeRequest({ policy, affinityKey: key }), seeded(1));
  expect(decision.reason).toBe('affinity');
  return decision.order[0];
}

describe('rendezvous hashing', () => {
  const backends = ['gpu-a', 'gpu-b', 'gpu-c', 'gpu-d'].map((id) => candidate(id));

  it('spreads distinct keys roughly evenly', () => {
    const counts = new Map<string | undefined, number>();
    for (let key = 0; key < 4000; key++) {
      const chosen = homeOf(backends, `key-${key}`);
      counts.set(chosen, (counts.get(chosen) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(['gpu-a', 'gpu-b', 'gpu-c', 'gpu-d']);
    for (const count of counts.values()) expect(Math.abs(count - 1000)).toBeLessThan(100);
  });

  it('moves only the keys of a backend that leaves', () => {
    const without = backends.filter((entry) => entry.backend !== 'gpu-c');
    let moved = 0;
    for (let key = 0; key < 2000; key++) {
      const before = homeOf(backends, `key-${key}`);
      const after = homeOf(without, `key-${key}`);
      if (before !== 'gpu-c' && before !== after) moved++;
    }
    expect(moved).toBe(0);
  });

  it('splits keys by weight on weighted routes', () => {
    const weightedSet = [candidate('big', { weight: 3 }), candidate('small', { weight: 1 })];
    let big = 0;
    for (let key = 0; key < 4000; key++) if (homeOf(weightedSet, `key-${key}`, 'weighted') === 'big') big++;
    expect(Math.abs(big / 4000 - 0.75)).toBeLessThan(0.03);
  });

  it('bounds the load at loadFactor × the fair share', () => {
    expect(withinLoadBound(0, 64, 0, 256, 1.25)).toBe(true);
    // 39 in flight over 4 equal backends, +1: fair share 10, bound ceil(12.5) + 1 = 14.
    expect(withinLoadBound(13, 64, 39, 256, 1.25)).toBe(true);
    expect(withinLoadBound(14, 64, 39, 256, 1.25)).toBe(false);
    // Capacity-weighted: a backend with half the total concurrency carries half.
    expect(withinLoadBound(25, 128, 39, 256, 1.25)).toBe(true); // ceil(1.25 × 40 × 0.5) + 1 = 26
    expect(withinLoadBound(26, 128, 39, 256, 1.25)).toBe(false);
  });
});

/** Runs requests with repeated prefixes through decide(), with a steady number in flight. */
function simulate(policy: PolicyName, prefixes: number, concurrency: number, runs: number) {
  const random = seeded(99);
  const backends = Array.from({ length: 4 }, (_, index) => candidate(`gpu-${index}`));
  const live: CandidateState[] = backends.map((entry) => ({ ...entry }));
  const inFlight: number[] = [];
  let onHome = 0;
  let worstOverBound = 0;
  const perBackend = [0, 0, 0, 0];
  for (let run = 0; run < runs; run++) {
    const key = `prefix-${Math.floor(random() * prefixes)}`;
    const decision = decide(live, routeRequest({ policy, affinityKey: key }), random);
    const chosen = live.findIndex((entry) => entry.backend === decision.order[0]);
    if (decision.order[0] === homeOf(backends, key)) onHome++;
    perBackend[chosen]! += 1;
    live[chosen]!.inflight += 1;
    inFlight.push(chosen);
    const total = inFlight.length;
    const bound = Math.ceil((1.25 * total) / 4) + LOAD_BOUND_SLACK;
    for (const entry of live) worstOverBound = Math.max(worstOverBound, entry.inflight - bound);
    if (inFlight.length >= concurrency) {
      const done = inFlight.splice(Math.floor(random() * inFlight.length), 1)[0]!;
      live[done]!.inflight -= 1;
    }
  }
  return { homeShare: onHome / runs, worstOverBound, perBackend };
}

describe('decide with prefix affinity', () => {
  it('keeps at least 90% of repeated-prefix requests on their backend within the load bound', () => {
    // 256 prefixes drawn at random, 32 requests in flight over 4 backends, completions in random order.
    const result = simulate('least-loaded', 256, 32, 5000);
    expect(result.homeShare).toBeGreaterThanOrEqual(0.9);
    expect(result.worstOverBound).toBeLessThanOrEqual(0);
    for (const count of result.perBackend) expect(Math.abs(count / 5000 - 0.25)).toBeLessThan(0.08);
  });

  it('falls back to the policy when the home is unhealthy, full, over the bound or too slow', () => {
    const backends = ['a', 'b', 'c'].map((id) => candidate(id));
    const key = 'some-prefix';
    const home = homeOf(backends, key);
    const request = routeRequest({ affinityKey: key, slo: { ttftMs: 1000 } });
    const with_ = (change: Partial<CandidateState>) => backends.map((entry) => (entry.backend === home ? { ...entry, ...change } : entry));
    expect(decide(backends, request, seeded(1))).toMatchObject({ reason: 'affinity', order: [home, expect.any(String), expect.any(String)] });
    // At maxConcurrency; above the bound (3 in flight, others idle: 3 + 1 > ceil(1.25 × 4 / 3) + 1 = 3); too slow for the SLO.
    for (const change of [{ inflight: 64 }, { inflight: 3 }, { ttftMs: 5000 }]) {
      const decision = decide(with_(change), request, seeded(1));
      expect(decision.reason).toBe('least-loaded');
      expect(decision.order[0]).not.toBe(home);
    }
    // When the home is unhealthy its keys move to one consistent new home.
    const survivors = backends.filter((entry) => entry.backend !== home);
    const next = homeOf(survivors, key);
    expect(decide(with_({ healthy: false, circuit: 'open' }), request, seeded(2))).toMatchObject({ reason: 'affinity', order: [next, expect.any(String)] });
  });

  it('never pays more for affinity on cheapest routes', () => {
    const cheap = [candidate('cheap-1', { cost: { outputPer1M: 1 } }), candidate('cheap-2', { cost: { outputPer1M: 1 } })];
    const pricey = candidate('pricey', { cost: { outputPer1M: 9 } });
    const seen = new Set<string>();
    for (let key = 0; key < 200; key++) {
      const decision = decide([...cheap, pricey], routeRequest({ policy: 'cheapest', affinityKey: `k${key}` }), seeded(key));
      expect(decision.reason).toBe('affinity');
      seen.add(decision.order[0]!);
    }
    expect([...seen].sort()).toEqual(['cheap-1', 'cheap-2']);
  });
});
