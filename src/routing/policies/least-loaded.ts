/**
 * `least-loaded`: the candidate with the smallest share of its concurrency
 * bound in use. Score = occupancy / maxConcurrency, where occupancy is the
 * gateway's in-flight count, or the runtime's queued + running when fresh
 * metrics show more (other clients or gateway replicas use it too).
 */
import { occupancyOf } from '../predict.ts';
import { byScore, byTtft, pickNearTie, promote, sortBy, type Entry, type Ranker } from './rank.ts';

/** Shares differ by at least 1/maxConcurrency, so only equal shares tie below this. */
const ABSOLUTE_TIE = 1e-9;

export const rankLeastLoaded: Ranker = (entries: Entry[], _request, random) => {
  for (const entry of entries) entry.score = occupancyOf(entry.candidate) / Math.max(1, entry.candidate.maxConcurrency);
  const sorted = sortBy(entries, byScore, byTtft);
  return { order: promote(sorted, pickNearTie(sorted, byScore, byScore, ABSOLUTE_TIE, random)), reason: 'least-loaded' };
};
