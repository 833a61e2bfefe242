/** The routing policies by name: the rankers decide() applies to each tier. */
import type { PolicyName } from '../types.ts';
import { rankBalanced } from './balanced.ts';
import { rankCheapest } from './cheapest.ts';
import { rankFastest } from './fastest.ts';
import { rankLeastLoaded } from './least-loaded.ts';
import type { Ranker } from './rank.ts';
import { rankRoundRobin } from './round-robin.ts';
import { rankWeighted } from './weighted.ts';

export const rankers: Readonly<Record<PolicyName, Ranker>> = {
  'least-loaded': rankLeastLoaded,
  cheapest: rankCheapest,
  fastest: rankFastest,
  balanced: rankBalanced,
  weighted: rankWeighted,
  'round-robin': rankRoundRobin,
};

export type { Ranker } from './rank.ts';
