// Decides, before any token is "generated", what a request will produce: prompt
// token count and prefix-cache hits, completion length and finish reason (per the
// flavour's context rules), and every token's text. Rendering and pacing are left
// to the flavour and the engine.

import type { FinishReason, Flavor, Piece, Plan, PlanChoice, Reply, ToolCall } from './flavor.ts';
import {
  CHAT_MESSAGE_OVERHEAD,
  CHAT_PROMPT_SUFFIX,
  estimateTextTokens,
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

export function chatPromptStats(fields: ChatFields, cache: PrefixCache, block: number): PromptStats {
  let hash = hashString('chat');
  let tokens = 0;
  let cached = 0;
  for (const message of fields.messages) {
    const text = messageText(message);
    hash = hashString(text, hash);
    tokens += CHAT_MESSAGE_OVERHEAD + estimateTextTokens(text);
    if (cache.check(hash)) cached = tokens;
  }
  if (fields.tools.length > 0) {
    // Tool definitions are rendered into the prompt by the chat template.
    const toolText = JSON.stringify(fields.tools);
    tokens += estimateTextTokens(toolText);
    hash = hashString(toolText, hash);
  }
  tokens += CHAT_PROMPT_SUFFIX;
  return { tokens, cached: roundCached(cached, tokens, block), hash };
}

export function textPromptStats(prompt: PromptInput, cache: PrefixCache, block: number): PromptStats {
  const text = typeof prompt === 'string' ? prompt : prompt.join(',');
  const tokens = typeof prompt === 'string' ? estimateTextTokens(prompt) + 1 : prompt.length;
  const hash = hashString(text, hashString('text'));
  const cached = cache.check(hash) ? tokens : 0;
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

export function buildChatPlan(fields: ChatFields, context: PlanContext): Plan | Reply {
  const { flavor, options } = context;
  const stats = chatPromptStats(fields, context.cache, flavor.cacheBlockTokens);
  const maxTokens = flavor.maxTokens(fields.maxTokens);
  if (isReply(maxTokens)) return maxTokens;
  const verdict = flavor.checkContext(stats.tokens, maxTokens, options);
  if (verdict.error !== undefined) return verdict.error;

  const seed = hashNumber(stats.hash, fields.seed ?? options.seed);
  const budget = verdict.completionTokens;
  const reasoning = options.reasoning ? reasoningShare(budget) : 0;
  const pieces: Piece[] = reasoning > 0 ? textPieces('reasoning', generateTokens(seed ^ 0x5bd1e995, reasoning, true)) : [];
  const toolCalls: ToolCall[] = [];
  let finishReason: FinishReason = verdict.finishReason;

  if (fields.tools.length > 0 && fields.toolChoice !== 'none') {
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
  } else {
    pieces.push(...textPieces('content', generateTokens(seed, budget - reasoning)));
  }

  return sumChoices({
    kind: 'chat',
    id: flavor.completionId('chat', context.requestIdHeader),
    created: Math.floor(Date.now() / 1000),
    model: flavor.responseModel(fields.model, options),
    choices: [
      { index: 0, pieces, finishReason, promptTokens: stats.tokens, cachedTokens: stats.cached, reasoningTokens: reasoning, toolCalls },
    ],
    includeUsage: fields.stream && flavor.includeUsage(fields.streamOptions),
  });
}

export function buildCompletionPlan(fields: CompletionFields, context: PlanContext): Plan | Reply {
  const { flavor, options } = context;
  const maxTokens = flavor.maxTokens(fields.maxTokens);
  if (isReply(maxTokens)) return maxTokens;
  const choices: PlanChoice[] = [];
  for (const [index, prompt] of fields.prompts.entries()) {
    const stats = textPromptStats(prompt, context.cache, flavor.cacheBlockTokens);
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
