/** The routing policies by name, in both forms: rankers for decide(), policies for direct use. */
import type { PolicyName } from '../types.ts';
import { balanced, rankBalanced } from './balanced.ts';
import { cheapest, rankCheapest } from './cheapest.ts';
import { fastest, rankFastest } from './fastest.ts';
import { leastLoaded, rankLeastLoaded } from './least-loaded.ts';
import type { Policy, Ranker } from './rank.ts';
import { rankWeighted, weighted } from './weighted.ts';

export const rankers: Readonly<Record<PolicyName, Ranker>> = {
  'least-loaded': rankLeastLoaded,
  cheapest: rankCheapest,
  fastest: rankFastest,
  balanced: rankBalanced,
  weighted: rankWeighted,
};

export const policies: Readonly<Record<PolicyName, Policy>> = {
  'least-loaded': leastLoaded,
  cheapest,
  fastest,
  balanced,
  weighted,
};

export type { Policy, Ranker } from './rank.ts';
