// Decides, before any token is "generated", what a request will produce: prompt
// token count and prefix-cache hits, completion length and finish reason (per the
// flavour's context rules), and every token's text. Rendering and pacing are left
// to the flavour and the engine.

import type { ContextVerdict, FinishReason, Flavor, Piece, Plan, PlanChoice, Reply, ToolCall } from './flavor.ts';
import {
  CHAT_MESSAGE_OVERHEAD,
  CHAT_PROMPT_SUFFIX,
  estimateTextTokens,
  generateJsonDocument,
  generateTokens,
  generateToolArguments,
  hashNumber,
  hashString,
  messageText,
  splitArguments,
} from './generate.ts';
import type { ResolvedOptions } from './options.ts';
import { type ChatFields, type CompletionFields, isReply, type PromptInput } from './request.ts';

/**
 * Remembers hashes of prompt prefixes (at message boundaries) to report prefix
 * cache hits: a later prompt that starts with an earlier one gets those tokens
 * as cached. Bounded; it simply forgets everything when full.
 */
export class PrefixCache {
  private readonly seen = new Set<number>();
  private readonly limit: number;

  constructor(limit = 50_000) {
    this.limit = limit;
  }

  /** True when the prefix was seen before; remembers it either way. */
  check(hash: number): boolean {
    if (this.seen.has(hash)) return true;
    if (this.seen.size >= this.limit) this.seen.clear();
    this.seen.add(hash);
    return false;
  }
}

export interface PromptStats {
  tokens: number;
  cached: number;
  hash: number;
}

function roundCached(cached: number, tokens: number, block: number): number {
  // The last prompt token is always computed again, and caches work in whole blocks.
  const usable = Math.min(cached, tokens - 1);
  return usable > 0 ? usable - (usable % block) : 0;
}

/** The request's prefix-cache controls (`cache_salt`, llama.cpp's `cache_prompt`). */
type CacheControls = Pick<ChatFields, 'cacheSalt' | 'cachePrompt'>;

/**
 * The prefix-cache key of a prompt prefix: requests with different salts never share a cached block. Only the
 * cache key is salted; the answer (seeded by the prompt hash) does not depend on the salt, as on the runtimes.
 */
function cacheKey(hash: number, controls: CacheControls): number {
  return controls.cacheSalt === undefined ? hash : hashString(controls.cacheSalt, hashString('salt', hash));
}

/** Prompt tokens and prefix-cache hits of a chat request; without a cache (token counting) nothing is remembered. */
export function chatPromptStats(fields: ChatFields, cache: PrefixCache | undefined, block: number): PromptStats {
  let hash = hashString('chat');
  let tokens = 0;
  let cached = 0;
  for (const message of fields.messages) {
    const text = messageText(message);
    hash = hashString(text, hash);
    tokens += CHAT_MESSAGE_OVERHEAD + estimateTextTokens(text);
    if (cache?.check(cacheKey(hash, fields)) === true) cached = tokens;
  }
  if (fields.tools.length > 0) {
    // Tool definitions are rendered into the prompt by the chat template.
    const toolText = JSON.stringify(fields.tools);
    tokens += estimateTextTokens(toolText);
    hash = hashString(toolText, hash);
  }
  tokens += CHAT_PROMPT_SUFFIX;
  // cache_prompt: false (llama.cpp) computes the prompt again; the slot still holds it afterwards.
  if (fields.cachePrompt === false) cached = 0;
  return { tokens, cached: roundCached(cached, tokens, block), hash };
}

export function textPromptStats(prompt: PromptInput, cache: PrefixCache, block: number, controls: CacheControls = {}): PromptStats {
  const text = typeof prompt === 'string' ? prompt : prompt.join(',');
  const tokens = typeof prompt === 'string' ? estimateTextTokens(prompt) + 1 : prompt.length;
  const hash = hashString(text, hashString('text'));
  const cached = cache.check(cacheKey(hash, controls)) && controls.cachePrompt !== false ? tokens : 0;
  return { tokens, cached: roundCached(cached, tokens, block), hash };
}

export interface PlanContext {
  flavor: Flavor;
  options: ResolvedOptions;
  cache: PrefixCache;
  requestIdHeader: string | undefined;
}

/** How many of `total` tokens are reasoning: about a third, at most eight, none for one token. */
function reasoningShare(total: number): number {
  if (total < 2) return 0;
  return Math.max(1, Math.min(8, Math.floor(total / 3)));
}

function textPieces(kind: 'content' | 'reasoning', tokens: string[]): Piece[] {
  return tokens.map((text) => ({ kind, text }));
}

function sumChoices(plan: Omit<Plan, 'promptTokens' | 'cachedTokens' | 'completionTokens' | 'reasoningTokens'>): Plan {
  let promptTokens = 0;
  let cachedTokens = 0;
  let completionTokens = 0;
  let reasoningTokens = 0;
  for (const choice of plan.choices) {
    promptTokens += choice.promptTokens;
    cachedTokens += choice.cachedTokens;
    completionTokens += choice.pieces.length;
    reasoningTokens += choice.reasoningTokens;
  }
  return { ...plan, promptTokens, cachedTokens, completionTokens, reasoningTokens };
}

/** The decoding budget and finish of a JSON answer: the whole document when it fits, else cut at the budget. */
function jsonPieces(fields: ChatFields, seed: number, budget: number, unbounded: boolean): { pieces: Piece[]; fits: boolean } {
  const document = generateJsonDocument(fields.json?.schema, seed);
  const all = splitArguments(document, 4).map((text): Piece => ({ kind: 'content', text }));
  if (all.length <= budget || (unbounded && all.length <= budget + JSON_SLACK)) return { pieces: all, fits: true };
  return { pieces: all.slice(0, budget), fits: false };
}

/** Tokens a JSON answer may run past defaultMaxTokens when the request set no max_tokens. */
const JSON_SLACK = 256;

/**
 * Cuts content at the first stop sequence: the text before it stays (the token holding it is
 * shortened), later tokens go. Returns the sequence found, or undefined.
 */
function applyStop(pieces: Piece[], stops: readonly string[]): string | undefined {
  let text = '';
  const ends: number[] = [];
  for (const piece of pieces) {
    if (piece.kind === 'content') text += piece.text;
    ends.push(text.length);
  }
  let at = -1;
  let found: string | undefined;
  for (const stop of stops) {
    const index = text.indexOf(stop);
    if (index >= 0 && (at < 0 || index < at)) {
      at = index;
      found = stop;
    }
  }
  if (found === undefined) return undefined;
  // The token that completes the stop sequence is the last one generated.
  const last = ends.findIndex((end) => end >= at + found.length);
  const kept = pieces.slice(0, last + 1);
  let start = 0;
  for (let i = 0; i < kept.length; i++) {
    const piece = kept[i];
    if (piece === undefined || piece.kind !== 'content') continue;
    const end = start + piece.text.length;
    if (end > at) kept[i] = { kind: 'content', text: piece.text.slice(0, Math.max(at - start, 0)) };
    start = end;
  }
  pieces.length = 0;
  pieces.push(...kept);
  return found;
}

/** Whether this turn calls a tool: never with `none`; always with `required` or a named tool; with
 * `auto` unless the conversation ends in a tool result, so an agent loop gets its final text answer. */
function callsTool(fields: ChatFields): boolean {
  if (fields.tools.length === 0 || fields.toolChoice === 'none') return false;
  if (fields.toolChoice !== 'auto') return true;
  const last = fields.messages[fields.messages.length - 1];
  return !(typeof last === 'object' && last !== null && (last as Record<string, unknown>).role === 'tool');
}

function buildChoice(fields: ChatFields, context: PlanContext, index: number, seed: number, verdict: ContextVerdict, maxTokens: number | undefined): PlanChoice {
  const { flavor, options } = context;
  const budget = verdict.completionTokens;
  const reasoning = options.reasoning ? reasoningShare(budget) : 0;
  const pieces: Piece[] = reasoning > 0 ? textPieces('reasoning', generateTokens(seed ^ 0x5bd1e995, reasoning, true)) : [];
  const toolCalls: ToolCall[] = [];
  let finishReason: FinishReason = verdict.finishReason;
  let stopSequence: string | undefined;

  if (callsTool(fields)) {
    // One call: to the named function, or to the first one offered.
    const choice = fields.toolChoice;
    const named = typeof choice === 'object';
    const tool = (named ? fields.tools.find((entry) => entry.name === choice.name) : undefined) ?? fields.tools[0];
    if (tool !== undefined) {
      const call: ToolCall = { id: flavor.toolCallId(), name: tool.name, arguments: generateToolArguments(tool.parameters, seed) };
      toolCalls.push(call);
      pieces.push({ kind: 'tool-header', toolIndex: 0, id: call.id, name: call.name });
      for (const text of splitArguments(call.arguments)) pieces.push({ kind: 'tool-args', toolIndex: 0, text });
      finishReason = flavor.toolFinishReason(named);
    }
  } else if (fields.json !== undefined) {
    // Without max_tokens (and room left in the context) the model runs until the document closes.
    const json = jsonPieces(fields, seed, Math.max(budget - reasoning, 1), maxTokens === undefined && verdict.finishReason === 'stop');
    pieces.push(...json.pieces);
    finishReason = json.fits ? 'stop' : 'length';
  } else {
    pieces.push(...textPieces('content', generateTokens(seed, budget - reasoning)));
    if (fields.stop !== undefined) {
      stopSequence = applyStop(pieces, fields.stop);
      if (stopSequence !== undefined) finishReason = 'stop';
    }
  }
  const choice: PlanChoice = { index, pieces, finishReason, promptTokens: 0, cachedTokens: 0, reasoningTokens: reasoning, toolCalls };
  if (stopSequence !== undefined) choice.stopSequence = stopSequence;
  return choice;
}

export function buildChatPlan(fields: ChatFields, context: PlanContext): Plan | Reply {
  const { flavor, options } = context;
  const stats = chatPromptStats(fields, context.cache, flavor.cacheBlockTokens);
  const maxTokens = flavor.maxTokens(fields.maxTokens);
  if (isReply(maxTokens)) return maxTokens;
  const responsesContext = fields.endpoint === 'responses' ? flavor.surfaces?.responsesContext : undefined;
  let verdict = responsesContext !== undefined ? responsesContext(stats.tokens, maxTokens, options) : flavor.checkContext(stats.tokens, maxTokens, options);
  if (verdict.error !== undefined) return verdict.error;
  const natural = fields.naturalLength;
  if (natural !== undefined && natural < verdict.completionTokens) verdict = { ...verdict, completionTokens: natural, finishReason: 'stop' };

  const seed = hashNumber(stats.hash, fields.seed ?? options.seed);
  const choices: PlanChoice[] = [];
  for (let index = 0; index < fields.n; index++) {
    const choice = buildChoice(fields, context, index, index === 0 ? seed : hashNumber(seed, index), verdict, maxTokens);
    choice.promptTokens = stats.tokens;
    choice.cachedTokens = stats.cached;
    choices.push(choice);
  }

  const plan = sumChoices({
    kind: fields.endpoint,
    id: flavor.completionId('chat', context.requestIdHeader),
    created: Math.floor(Date.now() / 1000),
    model: flavor.responseModel(fields.model, options),
    choices,
    includeUsage: fields.stream && flavor.includeUsage(fields.streamOptions),
  });
  // n choices share one prompt.
  plan.promptTokens = stats.tokens;
  plan.cachedTokens = stats.cached;
  if (fields.logprobs !== undefined) plan.logprobs = fields.logprobs;
  if (fields.endpoint !== 'chat' && flavor.surfaces !== undefined) {
    plan.surface = flavor.surfaces.newSurface(fields.endpoint, fields.request ?? {}, verdict.completionTokens, context.requestIdHeader);
  }
  return plan;
}

export function buildCompletionPlan(fields: CompletionFields, context: PlanContext): Plan | Reply {
  const { flavor, options } = context;
  const maxTokens = flavor.maxTokens(fields.maxTokens);
  if (isReply(maxTokens)) return maxTokens;
  const choices: PlanChoice[] = [];
  for (const [index, prompt] of fields.prompts.entries()) {
    const stats = textPromptStats(prompt, context.cache, flavor.cacheBlockTokens, fields);
    const verdict = flavor.checkContext(stats.tokens, maxTokens, options);
    if (verdict.error !== undefined) return verdict.error;
    const seed = hashNumber(stats.hash, fields.seed ?? options.seed);
    choices.push({
      index,
      pieces: textPieces('content', generateTokens(seed, verdict.completionTokens)),
      finishReason: verdict.finishReason,
      promptTokens: stats.tokens,
      cachedTokens: stats.cached,
      reasoningTokens: 0,
      toolCalls: [],
    });
  }
  return sumChoices({
    kind: 'completions',
    id: flavor.completionId('completions', context.requestIdHeader),
    created: Math.floor(Date.now() / 1000),
    model: flavor.responseModel(fields.model, options),
    choices,
    includeUsage: fields.stream && flavor.includeUsage(fields.streamOptions),
  });
}
