/**
 * `cheapest`: the lowest cost per 1M tokens among candidates predicted to
 * meet the route's SLO (TTFT ≤ slo.ttftMs and, when set, TPOT ≤ slo.tpotMs).
 * When none does, the one with the lowest predicted TTFT (`fastest-slo-miss`);
 * rejecting instead (`onSloMiss: reject`) is the caller's check, shared by
 * all policies. Score = cost per 1M tokens.
 */
import { byCost, byTtft, hasSlo, meetsSlo, pickNearTie, promote, sortBy, type Entry, type Ranker } from './rank.ts';

/** Costs closer than this (per 1M tokens) are equal: free backends tie with each other. */
const ABSOLUTE_TIE_COST = 1e-9;
const ABSOLUTE_TIE_MS = 1;

export const rankCheapest: Ranker = (entries: Entry[], request, random) => {
  const within: Entry[] = [];
  const missing: Entry[] = [];
  for (const entry of entries) {
    entry.score = entry.cost;
    (meetsSlo(entry, request) ? within : missing).push(entry);
  }
  sortBy(missing, byTtft, byCost);
  if (within.length > 0) {
    // Among equally cheap backends, lean to the one predicted to answer sooner.
    sortBy(within, byCost, byTtft);
    promote(within, pickNearTie(within, byCost, byTtft, ABSOLUTE_TIE_COST, random));
    for (const entry of missing) within.push(entry);
    return { order: within, reason: hasSlo(request) ? 'cheapest-within-slo' : 'cheapest' };
  }
  promote(missing, pickNearTie(missing, byTtft, byCost, ABSOLUTE_TIE_MS, random));
  return { order: missing, reason: 'fastest-slo-miss' };
};
