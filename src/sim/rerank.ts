// Rerank: one relevance score per document, deterministic and meaningful enough to
// demo with - the share of the query's words a document contains, plus a little
// jitter from a hash so ties break the same way every time. Each flavour turns the
// relevance into its runtime's score (a raw logit, or a probability) and shape.

import type { FlavorSurfaces, Reply, RerankScore } from './flavor.ts';
import type { JobOutput } from './generation.ts';
import { estimateTextTokens, hashString } from './generate.ts';
import type { RerankFields } from './request.ts';

/** Tokens of one query/document pair: both texts plus the separators of a rerank prompt. */
const PAIR_OVERHEAD = 4;

function words(text: string): Set<string> {
  return new Set(
    text
      .toLowerCase()
      .split(/[^\p{L}\p{N}]+/u)
      .filter((word) => word.length > 2),
  );
}

/** 0..1: the share of the query's words found in the document, nudged by a stable hash. */
export function relevance(query: Set<string>, document: string): number {
  const found = words(document);
  let shared = 0;
  for (const word of query) if (found.has(word)) shared++;
  const overlap = query.size > 0 ? shared / query.size : 0;
  const jitter = (hashString(document) % 1000) / 1000;
  return Math.min(1, overlap * 0.9 + jitter * 0.1);
}

export function rerankOutput(surfaces: FlavorSurfaces, fields: RerankFields, requestId: string | undefined): JobOutput | Reply {
  const query = words(fields.query);
  const queryTokens = estimateTextTokens(fields.query);
  let promptTokens = 0;
  const scores: RerankScore[] = fields.documents.map((document, index) => {
    promptTokens += queryTokens + estimateTextTokens(document) + PAIR_OVERHEAD;
    return { index, score: surfaces.rerankScore(relevance(query, document)) };
  });
  // Best first; equal scores keep the documents' order, as a stable sort does.
  scores.sort((a, b) => b.score - a.score);
  const kept = fields.topN !== undefined ? scores.slice(0, fields.topN) : scores;
  const id = requestId ?? '';
  return {
    promptTokens,
    cachedTokens: 0,
    body: () => surfaces.renderRerank(fields, kept, promptTokens, id),
  };
}
