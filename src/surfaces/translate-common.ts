/**
 * Small helpers shared by the pure surface translators (Responses <-> chat, Messages <-> chat):
 * type guards over parsed JSON, the invalid-parameter error, reading a chat completion's usage and
 * message, and writing one SSE event. No I/O, no state.
 */
import { gatewayError, type GatewayError } from '../errors.ts';
import type { Usage } from '../wire/types.ts';

/** A parsed JSON object. */
export type JsonObject = Record<string, unknown>;

export function isRecord(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The invalid-parameter error every translator throws; `message` says how to fix the request. */
export function invalidParam(param: string, message: string): GatewayError {
  return gatewayError('SWY_ERR_INVALID_PARAM', { param, message });
}

/** The value as a string, or throws naming `param`. */
export function requireString(value: unknown, param: string, what: string): string {
  if (typeof value !== 'string') throw invalidParam(param, `${param} must be a string: ${what}.`);
  return value;
}

/** The value as an array, or throws naming `param`. */
export function requireArray(value: unknown, param: string, what: string): unknown[] {
  if (!Array.isArray(value)) throw invalidParam(param, `${param} must be an array: ${what}.`);
  return value;
}

/** The value as an object, or throws naming `param`. */
export function requireObject(value: unknown, param: string, what: string): JsonObject {
  if (!isRecord(value)) throw invalidParam(param, `${param} must be an object: ${what}.`);
  return value;
}

/** A non-negative integer count, or 0 for anything else. */
export function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.trunc(value) : 0;
}

/** Chat usage with the two detail counts the other surfaces report. */
export interface ChatUsage extends Usage {
  /** completion_tokens_details.reasoning_tokens, when the runtime reports it. */
  reasoning_tokens?: number;
}

/**
 * Usage of a chat completion (or its usage chunk): the `usage` object, or llama.cpp's `timings`
 * (prompt_n + cache_n prompt tokens, predicted_n completion tokens) when it sent no usage.
 */
export function chatUsage(body: JsonObject): ChatUsage | undefined {
  const usage = body.usage;
  if (isRecord(usage)) {
    const prompt = count(usage.prompt_tokens);
    const completion = count(usage.completion_tokens);
    const result: ChatUsage = {
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: typeof usage.total_tokens === 'number' ? count(usage.total_tokens) : prompt + completion,
    };
    const promptDetails = usage.prompt_tokens_details;
    if (isRecord(promptDetails) && typeof promptDetails.cached_tokens === 'number') result.cached_tokens = count(promptDetails.cached_tokens);
    const completionDetails = usage.completion_tokens_details;
    if (isRecord(completionDetails) && typeof completionDetails.reasoning_tokens === 'number') {
      result.reasoning_tokens = count(completionDetails.reasoning_tokens);
    }
    return result;
  }
  const timings = body.timings;
  if (isRecord(timings) && typeof timings.prompt_n === 'number' && typeof timings.predicted_n === 'number') {
    const cached = count(timings.cache_n);
    const prompt = count(timings.prompt_n) + cached;
    const completion = count(timings.predicted_n);
    const result: ChatUsage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
    if (typeof timings.cache_n === 'number') result.cached_tokens = cached;
    return result;
  }
  return undefined;
}

/** The metering view of a usage: the chat `Usage` shape, without the extra detail. */
export function meteringUsage(usage: ChatUsage): Usage {
  const result: Usage = { prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens, total_tokens: usage.total_tokens };
  if (usage.cached_tokens !== undefined) result.cached_tokens = usage.cached_tokens;
  return result;
}

/** The first choice of a chat completion or chunk, if any. */
export function firstChoice(body: JsonObject): JsonObject | undefined {
  const choices = body.choices;
  if (!Array.isArray(choices)) return undefined;
  const first: unknown = choices[0];
  return isRecord(first) ? first : undefined;
}

/** Reasoning text of a chat message or delta: llama.cpp/SGLang say `reasoning_content`, vLLM says `reasoning`. */
export function reasoningText(message: JsonObject): string | undefined {
  const text = message.reasoning_content ?? message.reasoning;
  return typeof text === 'string' && text !== '' ? text : undefined;
}

/** One tool call of a chat message, normalised. */
export interface ChatToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** The function tool calls of a chat message; ids are made up from `fallbackId` where missing. */
export function chatToolCalls(message: JsonObject, fallbackId: string): ChatToolCall[] {
  const calls = message.tool_calls;
  if (!Array.isArray(calls)) return [];
  const result: ChatToolCall[] = [];
  for (const call of calls) {
    if (!isRecord(call)) continue;
    const fn = isRecord(call.function) ? call.function : {};
    const id = typeof call.id === 'string' && call.id !== '' ? call.id : `${fallbackId}_${result.length}`;
    const args = fn.arguments;
    result.push({
      id,
      name: typeof fn.name === 'string' ? fn.name : '',
      arguments: typeof args === 'string' ? args : args === undefined ? '' : JSON.stringify(args),
    });
  }
  return result;
}

/** The text content of a chat message: a string, or the text parts of a content array joined. */
export function chatText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content) if (isRecord(part) && typeof part.text === 'string') text += part.text;
  return text;
}

/** The part of an id after its first `_` (`chatcmpl-1`'s whole text when there is none), to derive sibling ids. */
export function idSuffix(id: string): string {
  const underscore = id.indexOf('_');
  return underscore === -1 ? id : id.slice(underscore + 1);
}

/** One server-sent event with a name, as Responses and Messages streams carry them. */
export function sseEvent(type: string, data: unknown): string {
  return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}
