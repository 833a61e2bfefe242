/**
 * `weighted`: static traffic split for canaries. One weighted random draw
 * picks the first target (probability weight / Σ weights); the rest follow by
 * descending weight, then least loaded, for failover. Score = weight share
 * (here higher means more traffic). All weights 0: least-loaded.
 */
import { occupancyOf } from '../predict.ts';
import { rankLeastLoaded } from './least-loaded.ts';
import { promote, type Entry, type Ranker } from './rank.ts';

function weightOf(entry: Entry): number {
  const weight = entry.candidate.weight;
  return Number.isFinite(weight) && weight > 0 ? weight : 0;
}

function loadShare(entry: Entry): number {
  return occupancyOf(entry.candidate) / Math.max(1, entry.candidate.maxConcurrency);
}

export const rankWeighted: Ranker = (entries: Entry[], request, random) => {
  let total = 0;
  for (const entry of entries) total += weightOf(entry);
  if (total <= 0) return rankLeastLoaded(entries, request, random);
  // Draw in input order so a given random number always maps to the same target.
  let draw = random() * total;
  let chosen: Entry | undefined;
  for (const entry of entries) {
    entry.score = weightOf(entry) / total;
    if (chosen === undefined && weightOf(entry) > 0) {
      draw -= weightOf(entry);
      if (draw < 0) chosen = entry;
    }
  }
  entries.sort((left, right) => weightOf(right) - weightOf(left) || loadShare(left) - loadShare(right));
  // Rounding can leave `draw` just above 0: the last positive weight then wins, as it would with exact arithmetic.
  const index = chosen === undefined ? lastPositive(entries) : entries.indexOf(chosen);
  return { order: promote(entries, index), reason: 'weighted' };
};

function lastPositive(sorted: readonly Entry[]): number {
  let index = 0;
  for (let position = 0; position < sorted.length; position++) if (weightOf(sorted[position] as Entry) > 0) index = position;
  return index;
}
