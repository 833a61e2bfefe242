/**
 * `balanced`: trades cost against latency on comparable, scale-free terms:
 *
 *   score = w × ln(cost / cheapest cost) + (1 − w) × ln(latency / fastest latency)
 *
 * w = the route's costWeight (1 = cost only, 0 = latency only), latency as in
 * `fastest` (the whole answer); lowest wins. Each term is how many times
 * worse than the best candidate a backend is on that axis, in log units, so a
 * price ratio and a latency ratio weigh the same at w = 0.5 and w moves
 * smoothly between `fastest` and `cheapest`. Costs below 1% of the dearest
 * count as that 1% (a free backend is not infinitely better), latencies below
 * 1 ms as 1 ms. With an SLO, candidates predicted to meet it rank first.
 *
 * Worked example, w = 0.5: cheap at 0.2 per 1M tokens, predicted 3 s; premium
 * at 2 per 1M, predicted 1 s. cheap = 0.5 × ln 1 + 0.5 × ln 3 = 0.55, premium =
 * 0.5 × ln 10 + 0.5 × ln 1 = 1.15: cheap wins, and would until it is predicted
 * 10× slower than premium. At w = 0.3 premium (0.69) beats cheap (0.77).
 */
import { byLatency, byScore, meetsSlo, pickNearTie, promote, sortBy, type Entry, type Ranker } from './rank.ts';

/** Scores are log ratios to the best (0): within 0.05 (about 5% on either axis) is a near-tie. */
const ABSOLUTE_TIE = 0.05;
/** Costs below this share of the dearest candidate's count as this share. */
const COST_FLOOR = 0.01;
const LATENCY_FLOOR_MS = 1;

function clampWeight(weight: number): number {
  if (!Number.isFinite(weight)) return 0.5;
  return Math.min(1, Math.max(0, weight));
}

export const rankBalanced: Ranker = (entries: Entry[], request, random) => {
  const weight = clampWeight(request.costWeight);
  let maxCost = 0;
  for (const entry of entries) if (entry.cost > maxCost) maxCost = entry.cost;
  const costFloor = Math.max(COST_FLOOR * maxCost, 1e-12);
  let minCost = Number.POSITIVE_INFINITY;
  let minLatency = Number.POSITIVE_INFINITY;
  for (const entry of entries) {
    minCost = Math.min(minCost, Math.max(entry.cost, costFloor));
    minLatency = Math.min(minLatency, Math.max(entry.latencyMs, LATENCY_FLOOR_MS));
  }
  for (const entry of entries) {
    const cost = Math.log(Math.max(entry.cost, costFloor) / minCost);
    const latency = Math.log(Math.max(entry.latencyMs, LATENCY_FLOOR_MS) / minLatency);
    entry.score = weight * cost + (1 - weight) * latency;
  }
  const sorted = sortBy(entries, byScore, byLatency);
  // Predicted SLO misses go last (stable: the scores order each group).
  const within = sorted.filter((entry) => meetsSlo(entry, request));
  if (within.length > 0 && within.length < sorted.length) {
    const missing = sorted.filter((entry) => !meetsSlo(entry, request));
    sorted.length = 0;
    sorted.push(...within, ...missing);
  }
  const head = within.length > 0 ? within : sorted;
  return { order: promote(sorted, pickNearTie(head, byScore, byScore, ABSOLUTE_TIE, random)), reason: 'balanced' };
};
