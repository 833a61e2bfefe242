/**
 * The ordered list of targets one request will try. Pure over the route's
 * live state: healthy first, ordered by the route's policy; a random draw
 * breaks ties so replicas don't all pick the same backend at once.
 */
import type { Route, Target } from '../backends/registry.ts';

/** Ordered attempt list and why the first one was chosen. */
export interface AttemptPlan {
  targets: Target[];
  reason: string;
}

function usable(target: Target): boolean {
  const health = target.backend.health;
  return health === 'up' || health === 'unknown';
}

function loadOf(target: Target): number {
  return target.backend.inflight / target.backend.config.maxConcurrency;
}

/** Least loaded first (in-flight share of maxConcurrency); random among equals. */
function leastLoaded(targets: Target[], random: () => number): Target[] {
  const keyed = targets.map((target) => ({ target, load: loadOf(target), tie: random() }));
  keyed.sort((left, right) => left.load - right.load || left.tie - right.tie);
  return keyed.map((entry) => entry.target);
}

/** One weighted draw first, the rest by descending weight. */
function weighted(targets: Target[], random: () => number): Target[] {
  const total = targets.reduce((sum, target) => sum + target.weight, 0);
  if (total <= 0) return leastLoaded(targets, random);
  let draw = random() * total;
  let chosen = targets[targets.length - 1] as Target;
  for (const target of targets) {
    draw -= target.weight;
    if (draw < 0) {
      chosen = target;
      break;
    }
  }
  const rest = targets.filter((target) => target !== chosen).sort((left, right) => right.weight - left.weight);
  return [chosen, ...rest];
}

/** Plans the attempts for a route; an empty list means nothing is usable. */
export function planAttempts(route: Route, random: () => number = Math.random): AttemptPlan {
  const healthy = route.targets.filter(usable);
  if (healthy.length === 0) return { targets: [], reason: 'no-healthy-backend' };
  const policy = route.config.policy;
  const ordered = policy === 'weighted' ? weighted(healthy, random) : leastLoaded(healthy, random);
  return { targets: ordered.slice(0, route.config.retries + 1), reason: policy };
}
