/**
 * Cheap edits on one JSON document from upstream (a response body or one SSE
 * chunk): put the public model name in, read usage out. No full parse.
 */
import { findTopLevel, onlyMember, stringEnd } from './json-splice.ts';
import type { Usage } from './types.ts';

const modelKey = '"model":';

/**
 * Replaces the value of the first `"model":"…"` member. In OpenAI response
 * shapes that member is the top-level one: every quote inside a string value
 * is escaped, so the unescaped key text cannot occur inside content.
 * `publicJson` is the already-serialised public name.
 */
export function rewriteModel(json: string, publicJson: string): string {
  const key = json.indexOf(modelKey);
  if (key === -1) return json;
  let start = key + modelKey.length;
  while (json.charCodeAt(start) === 32) start++;
  if (json.charCodeAt(start) !== 34) return json;
  const end = stringEnd(json, start);
  if (end === -1) return json;
  if (end - start === publicJson.length && json.startsWith(publicJson, start)) return json;
  return json.slice(0, start) + publicJson + json.slice(end);
}

/** Reads a usage object from its JSON text, tolerating missing fields. */
export function parseUsage(text: string): Usage | undefined {
  try {
    const raw = JSON.parse(text) as (Partial<Usage> & { prompt_tokens_details?: { cached_tokens?: number } }) | null;
    if (!raw || typeof raw !== 'object') return undefined;
    const completion = Number(raw.completion_tokens ?? 0);
    // Some answers count only a total (vLLM's rerank in older releases): the rest is prompt.
    const prompt = Number(raw.prompt_tokens ?? (raw.total_tokens === undefined ? 0 : Number(raw.total_tokens) - completion));
    const usage: Usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: Number(raw.total_tokens ?? prompt + completion) };
    const cached = raw.prompt_tokens_details?.cached_tokens;
    if (typeof cached === 'number') usage.cached_tokens = cached;
    return usage;
  } catch {
    return undefined;
  }
}

/**
 * Usage from a whole response body or chunk, when it has a non-null `usage`.
 * As with the model (rewriteModel), a lone `"usage":` member in an OpenAI
 * response shape is the top-level one; several send it to a full scan.
 */
export function extractUsage(json: string): Usage | undefined {
  if (!json.includes('"usage"')) return undefined;
  const span = onlyMember(json, 'usage') ?? findTopLevel(json, ['usage']).get('usage');
  if (!span) return undefined;
  const text = json.slice(span.start, span.end);
  if (text === 'null') return undefined;
  return parseUsage(text);
}

/**
 * Usage from llama.cpp's `timings` object (prompt_n + cache_n prompt tokens, predicted_n completion
 * tokens), for streams that did not ask for the usage chunk.
 */
export function usageFromTimings(json: string): Usage | undefined {
  if (!json.includes('"timings"')) return undefined;
  const span = findTopLevel(json, ['timings']).get('timings');
  if (!span) return undefined;
  try {
    const timings = JSON.parse(json.slice(span.start, span.end)) as { prompt_n?: number; cache_n?: number; predicted_n?: number };
    if (typeof timings.predicted_n !== 'number' || typeof timings.prompt_n !== 'number') return undefined;
    const prompt = timings.prompt_n + (timings.cache_n ?? 0);
    const usage: Usage = { prompt_tokens: prompt, completion_tokens: timings.predicted_n, total_tokens: prompt + timings.predicted_n };
    if (typeof timings.cache_n === 'number') usage.cached_tokens = timings.cache_n;
    return usage;
  } catch {
    return undefined;
  }
}

/** True for the extra usage-only chunk (`"choices":[]`) that include_usage adds. */
export function isUsageOnlyChunk(json: string): boolean {
  if (!json.includes('"usage"')) return false;
  const spans = findTopLevel(json, ['choices', 'usage']);
  const choices = spans.get('choices');
  const usage = spans.get('usage');
  if (!usage || json.slice(usage.start, usage.end) === 'null') return false;
  return !choices || /^\[\s*\]$/.test(json.slice(choices.start, choices.end));
}
