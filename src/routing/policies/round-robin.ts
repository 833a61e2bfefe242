/**
 * `round-robin`: each request starts one target further along the route's
 * list than the one before (the router's per-route turn counter); the rest
 * follow in list order for failover. Ignores load, latency and cost: the
 * baseline the other policies are measured against. Score = position.
 */
import type { Entry, Ranker } from './rank.ts';

export const rankRoundRobin: Ranker = (entries: Entry[], request) => {
  const count = entries.length;
  if (count === 0) return { order: entries, reason: 'round-robin' };
  const start = (request.turn ?? 0) % count;
  const order: Entry[] = [];
  for (let step = 0; step < count; step++) {
    const entry = entries[(start + step) % count] as Entry;
    entry.score = step;
    order.push(entry);
  }
  return { order, reason: 'round-robin' };
};
