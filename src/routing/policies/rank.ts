/**
 * What every policy shares: per-candidate figures computed once per decision,
 * the near-tie draw that keeps replicas from herding, and the SLO checks.
 */
import { costIsAssumed, costPer1M, predictLatencyMs, predictTpotMs, predictTtftMs } from '../predict.ts';
import type { CandidateScore, CandidateState, RouteRequest, RoutingDecision } from '../types.ts';

/** One candidate with its predictions; `score` is set by the ranking policy (lower is better unless the policy says otherwise). */
export interface Entry {
  candidate: CandidateState;
  ttftMs: number;
  tpotMs: number;
  latencyMs: number;
  cost: number;
  score: number;
  excluded: string | undefined;
}

/** A policy's answer over entries: all of them in attempt order. */
export interface Ranking {
  order: Entry[];
  reason: string;
}

/** A policy in its internal form: orders entries, may set their scores. */
export type Ranker = (entries: Entry[], request: RouteRequest, random: () => number) => Ranking;

/** Scores within this fraction of the best one count as a tie. */
export const NEAR_TIE_RELATIVE = 0.05;

export function entryFor(candidate: CandidateState, request: RouteRequest): Entry {
  const ttftMs = predictTtftMs(candidate);
  const tpotMs = predictTpotMs(candidate);
  return {
    candidate,
    ttftMs,
    tpotMs,
    // Predicted time to the last token of the answer (see predict.ts).
    latencyMs: predictLatencyMs(candidate, ttftMs, tpotMs, request),
    cost: costPer1M(candidate, request),
    score: Number.POSITIVE_INFINITY,
    excluded: undefined,
  };
}

/** True when the route has an SLO and the entry is predicted to meet it (no SLO: always). */
export function meetsSlo(entry: Entry, request: RouteRequest): boolean {
  const slo = request.slo;
  if (slo === undefined) return true;
  if (slo.ttftMs !== undefined && entry.ttftMs > slo.ttftMs) return false;
  if (slo.tpotMs !== undefined && entry.tpotMs > slo.tpotMs) return false;
  return true;
}

export function hasSlo(request: RouteRequest): boolean {
  return request.slo !== undefined && (request.slo.ttftMs !== undefined || request.slo.tpotMs !== undefined);
}

export type Key = (entry: Entry) => number;
export const byScore: Key = (entry) => entry.score;
export const byCost: Key = (entry) => entry.cost;
export const byTtft: Key = (entry) => entry.ttftMs;
export const byLatency: Key = (entry) => entry.latencyMs;

/** Sorts in place by `primary`, then `secondary`; the sort is stable, so input order breaks exact ties. */
export function sortBy(entries: Entry[], primary: Key, secondary: Key): Entry[] {
  return entries.sort((left, right) => primary(left) - primary(right) || secondary(left) - secondary(right));
}

function randomIndex(random: () => number, size: number): number {
  return Math.min(size - 1, Math.floor(random() * size));
}

/** True when two values of a key are within NEAR_TIE_RELATIVE of each other. */
function nearEqual(left: number, right: number): boolean {
  return Math.abs(left - right) <= NEAR_TIE_RELATIVE * Math.max(Math.abs(left), Math.abs(right));
}

/**
 * Index of the entry to try first in `sorted` (ascending by `primary`).
 * Entries within NEAR_TIE_RELATIVE of the best (or `absolute`, for scores
 * near zero) are a tie set. When the whole set is near-equal on `secondary`
 * too (identical machines whose learnt figures differ by noise), the one with
 * the fewest requests in flight wins, then the one sent fewest requests
 * lately (a random one among equals), so they share the traffic evenly. Otherwise two of them are drawn at random (with
 * replacement) and the one lower on `secondary` wins — power of two choices.
 * Many gateway replicas with the same snapshot thus spread over the tie set
 * instead of all sending to one backend, while still leaning to the better.
 */
export function pickNearTie(sorted: readonly Entry[], primary: Key, secondary: Key, absolute: number, random: () => number): number {
  const first = sorted[0];
  if (first === undefined || sorted.length === 1) return 0;
  const best = primary(first);
  const limit = best + Math.max(NEAR_TIE_RELATIVE * Math.abs(best), absolute);
  let size = 1;
  let low = secondary(first);
  let high = low;
  while (size < sorted.length && primary(sorted[size] as Entry) <= limit) {
    const key = secondary(sorted[size] as Entry);
    if (key < low) low = key;
    if (key > high) high = key;
    size++;
  }
  if (size === 1) return 0;
  // One key for both (balanced's score): the tie set is near-equal on it by construction.
  if (secondary === primary || nearEqual(low, high)) return leastInflight(sorted, size, random);
  const one = randomIndex(random, size);
  const two = randomIndex(random, size);
  return secondary(sorted[one] as Entry) <= secondary(sorted[two] as Entry) ? one : two;
}

/**
 * Among the first `size` entries, one with the fewest requests in flight; among those, the one served least lately
 * (so identical idle backends take turns instead of splitting by coin toss), drawn at random among equals.
 */
function leastInflight(sorted: readonly Entry[], size: number, random: () => number): number {
  let fewest = Number.POSITIVE_INFINITY;
  for (let index = 0; index < size; index++) fewest = Math.min(fewest, (sorted[index] as Entry).candidate.inflight);
  let least = Number.POSITIVE_INFINITY;
  for (let index = 0; index < size; index++) {
    const candidate = (sorted[index] as Entry).candidate;
    if (candidate.inflight === fewest) least = Math.min(least, candidate.recentSent ?? 0);
  }
  return drawIndex(sorted, size, (entry) => entry.candidate.inflight === fewest && (entry.candidate.recentSent ?? 0) <= least, random);
}

/** Index of one of the first `size` entries that `accept` takes, drawn at random; -1 when none does. */
export function drawIndex(entries: readonly Entry[], size: number, accept: (entry: Entry) => boolean, random: () => number): number {
  let count = 0;
  for (let index = 0; index < size; index++) if (accept(entries[index] as Entry)) count++;
  if (count === 0) return -1;
  let draw = randomIndex(random, count);
  for (let index = 0; index < size; index++) {
    if (!accept(entries[index] as Entry)) continue;
    if (draw === 0) return index;
    draw--;
  }
  return -1;
}

/** Moves `sorted[index]` to the front, keeping the rest in order. */
export function promote(sorted: Entry[], index: number): Entry[] {
  if (index > 0) {
    const chosen = sorted[index] as Entry;
    sorted.copyWithin(1, 0, index);
    sorted[0] = chosen;
  }
  return sorted;
}

export function scoreOf(entry: Entry): CandidateScore {
  const score: CandidateScore = {
    backend: entry.candidate.backend,
    predictedTtftMs: entry.ttftMs,
    costPer1M: entry.cost,
    score: entry.score,
  };
  if (entry.excluded !== undefined) score.excluded = entry.excluded;
  if (costIsAssumed(entry.candidate)) score.costAssumed = true;
  return score;
}

/**
 * Rejection when the route says `onSloMiss: reject` and no usable entry is predicted
 * to meet the SLO. Retry after the time the best one's queue needs to drain
 * down to the SLO: ceil((min predicted TTFT − slo.ttftMs) / 1000) s, in 1..60.
 */
export function sloRejection(entries: readonly Entry[], request: RouteRequest): RoutingDecision['reject'] {
  if (request.onSloMiss !== 'reject' || !hasSlo(request) || entries.length === 0) return undefined;
  let bestTtft = Number.POSITIVE_INFINITY;
  for (const entry of entries) {
    if (entry.excluded !== undefined) continue;
    if (meetsSlo(entry, request)) return undefined;
    if (entry.ttftMs < bestTtft) bestTtft = entry.ttftMs;
  }
  if (bestTtft === Number.POSITIVE_INFINITY) return undefined;
  const over = request.slo?.ttftMs === undefined ? 0 : bestTtft - request.slo.ttftMs;
  const retryAfterSeconds = Math.min(60, Math.max(1, Math.ceil(over / 1000)));
  const target = request.slo?.ttftMs === undefined ? `TPOT ${request.slo?.tpotMs} ms` : `time to first token ${request.slo.ttftMs} ms`;
  return {
    code: 'slo_unmet',
    message: `No backend is predicted to meet the route's ${target} right now (best predicted TTFT ${Math.round(bestTtft)} ms); retry later.`,
    retryAfterSeconds,
  };
}
