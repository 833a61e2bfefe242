/** Hand-made snapshots and a seeded PRNG for the routing unit tests. */
import { decide } from '../../../src/routing/decide.ts';
import type { CandidateState, PolicyName, RouteRequest, RoutingDecision } from '../../../src/routing/types.ts';

/** A healthy, idle, observed candidate; override what the test is about. */
export function candidate(backend: string, overrides: Partial<CandidateState> = {}): CandidateState {
  return {
    backend,
    model: 'm',
    weight: 1,
    healthy: true,
    circuit: 'closed',
    inflight: 0,
    maxConcurrency: 64,
    queued: 0,
    running: 0,
    slots: undefined,
    kvCacheUsage: undefined,
    metricsStale: false,
    ttftMs: 200,
    tpotMs: 20,
    contextLength: 8192,
    cost: {},
    throughputTokensPerSecond: undefined,
    ...overrides,
  };
}

/**
 * A request description; unless `context` is given, the context check counts the estimate as certain and
 * the completion budget as the client's max_tokens (the tests that are not about the context check).
 */
export function routeRequest(overrides: Partial<RouteRequest> = {}): RouteRequest {
  const promptTokens = overrides.promptTokens ?? 100;
  const maxTokens = overrides.maxTokens ?? 100;
  return {
    policy: 'least-loaded',
    promptTokens,
    maxTokens,
    context: { promptFloor: () => promptTokens, maxTokens, minOutput: 0 },
    affinityKey: undefined,
    slo: undefined,
    onSloMiss: 'fallback',
    costWeight: 0.5,
    ...overrides,
  };
}

/** mulberry32: a small seeded PRNG so statistical tests are deterministic. */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

/** Counts first choices over `runs` decisions. */
export function tally(runs: number, choose: () => string | undefined): Map<string, number> {
  const counts = new Map<string, number>();
  for (let run = 0; run < runs; run++) {
    const choice = choose() ?? 'none';
    counts.set(choice, (counts.get(choice) ?? 0) + 1);
  }
  return counts;
}

/**
 * One policy through the production path: decide() with the request's policy set to `name`. With every
 * candidate healthy, closed and below maxConcurrency (as in the policy tests) its order is the policy's ranking.
 */
export function viaDecide(name: PolicyName): (candidates: readonly CandidateState[], request: RouteRequest, random: () => number) => RoutingDecision {
  return (candidates, request, random) => decide(candidates, { ...request, policy: name }, random);
}
