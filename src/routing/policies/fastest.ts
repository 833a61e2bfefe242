/**
 * `fastest`: the lowest predicted latency, where latency is the whole answer:
 * predicted TTFT + its expected length × predicted TPOT (the length is
 * min(max_tokens, the route's typical answer), the same for every candidate;
 * see predict.ts). TTFT alone would favour a backend that answers quickly and
 * then decodes slowly; a client waits for the last token whether it streams or
 * not. Near-ties (within 5%) go to the cheaper one more often (power of two
 * choices on cost).
 */
import { byCost, byLatency, pickNearTie, promote, sortBy, type Entry, type Ranker } from './rank.ts';

/** Latencies closer than this (ms) are equal for routing purposes. */
const ABSOLUTE_TIE_MS = 1;

export const rankFastest: Ranker = (entries: Entry[], _request, random) => {
  for (const entry of entries) entry.score = entry.latencyMs;
  const sorted = sortBy(entries, byLatency, byCost);
  return { order: promote(sorted, pickNearTie(sorted, byLatency, byCost, ABSOLUTE_TIE_MS, random)), reason: 'fastest' };
};
