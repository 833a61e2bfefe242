/**
 * `balanced`: score = w × cost / max cost + (1 − w) × latency / max latency,
 * w = the route's costWeight (1 = cost only, 0 = latency only), latency as in
 * `fastest`; lowest wins. Dividing by the largest value (rather than min-max
 * scaling) keeps ratios: with min-max, two backends always score 0 and 1 on
 * each axis, so a 10× price gap would weigh the same as a 5% latency gap.
 */
import { byLatency, byScore, pickNearTie, promote, sortBy, type Entry, type Ranker } from './rank.ts';

const ABSOLUTE_TIE = 1e-9;

function clampWeight(weight: number): number {
  if (!Number.isFinite(weight)) return 0.5;
  return Math.min(1, Math.max(0, weight));
}

export const rankBalanced: Ranker = (entries: Entry[], request, random) => {
  const weight = clampWeight(request.costWeight);
  let maxCost = 0;
  let maxLatency = 0;
  for (const entry of entries) {
    if (entry.cost > maxCost) maxCost = entry.cost;
    if (entry.latencyMs > maxLatency) maxLatency = entry.latencyMs;
  }
  for (const entry of entries) {
    const cost = maxCost > 0 ? entry.cost / maxCost : 0;
    const latency = maxLatency > 0 ? entry.latencyMs / maxLatency : 0;
    entry.score = weight * cost + (1 - weight) * latency;
  }
  const sorted = sortBy(entries, byScore, byLatency);
  return { order: promote(sorted, pickNearTie(sorted, byScore, byScore, ABSOLUTE_TIE, random)), reason: 'balanced' };
};
