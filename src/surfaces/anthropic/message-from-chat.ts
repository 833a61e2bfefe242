/**
 * Chat completion answer -> Anthropic Message (non-streaming /v1/messages translated onto chat),
 * the shared stop reason and usage mappings, and usage out of native Messages answers and events.
 *
 * Content blocks in Anthropic's order: `thinking` (from reasoning_content / reasoning, with an empty
 * signature: a self-hosted model has none to give), `text`, then one `tool_use` per chat tool call
 * with its arguments parsed into `input`. Anthropic counts cached prompt tokens apart from
 * input_tokens (input_tokens + cache_read_input_tokens = the chat prompt_tokens).
 */
import type { Usage } from '../../wire/types.ts';
import { chatText, chatToolCalls, chatUsage, count, firstChoice, isRecord, reasoningText, type ChatUsage, type JsonObject } from '../translate-common.ts';

/** What the Messages translators need to know about the request they answer. */
export interface MessagesContext {
  /** The message id (`msg_…`). */
  id: string;
  /** The public model name the client asked for. */
  model: string;
}

/**
 * The Anthropic stop reason for a chat finish: `length` -> max_tokens, tool calls -> tool_use,
 * a matched stop string (vLLM reports it as the choice's `stop_reason`, SGLang as `matched_stop`; a stop
 * token id there is a number) -> stop_sequence,
 * content_filter -> refusal, anything else -> end_turn.
 */
export function stopReason(finishReason: unknown, matchedStop: unknown, toolCalls: boolean): { reason: string; sequence: string | null } {
  if (finishReason === 'length') return { reason: 'max_tokens', sequence: null };
  if (finishReason === 'tool_calls' || finishReason === 'function_call' || toolCalls) return { reason: 'tool_use', sequence: null };
  if (finishReason === 'content_filter') return { reason: 'refusal', sequence: null };
  if (typeof matchedStop === 'string' && matchedStop !== '') return { reason: 'stop_sequence', sequence: matchedStop };
  return { reason: 'end_turn', sequence: null };
}

/** Anthropic usage from chat usage. */
export function messagesUsageFromChat(usage: ChatUsage): JsonObject {
  const cached = usage.cached_tokens;
  const result: JsonObject = { input_tokens: Math.max(0, usage.prompt_tokens - (cached ?? 0)) };
  if (cached !== undefined) result.cache_read_input_tokens = cached;
  result.output_tokens = usage.completion_tokens;
  return result;
}

/** Parsed tool input: a JSON object, or `{}` when the model wrote something else (the tool then reports what is missing). */
export function toolInput(text: string): JsonObject {
  if (text.trim() === '') return {};
  try {
    const parsed: unknown = JSON.parse(text);
    return isRecord(parsed) ? parsed : {};
  } catch {
    return {};
  }
}

/** A chat completion as the Anthropic Message the client asked for. */
export function chatCompletionToMessage(chat: Record<string, unknown>, context: MessagesContext): Record<string, unknown> {
  const choice = firstChoice(chat) ?? {};
  const message = isRecord(choice.message) ? choice.message : {};
  const content: JsonObject[] = [];
  const reasoning = reasoningText(message);
  if (reasoning !== undefined) content.push({ type: 'thinking', thinking: reasoning, signature: '' });
  const text = chatText(message.content);
  if (text !== '') content.push({ type: 'text', text });
  const calls = chatToolCalls(message, `toolu_${context.id.slice(context.id.indexOf('_') + 1)}`);
  for (const call of calls) content.push({ type: 'tool_use', id: call.id, name: call.name, input: toolInput(call.arguments) });
  const stop = stopReason(choice.finish_reason, choice.stop_reason ?? choice.matched_stop, calls.length > 0);
  const usage = chatUsage(chat);
  return {
    id: context.id,
    type: 'message',
    role: 'assistant',
    model: context.model,
    content,
    stop_reason: stop.reason,
    stop_sequence: stop.sequence,
    usage: usage ? messagesUsageFromChat(usage) : { input_tokens: 0, output_tokens: 0 },
  };
}

/**
 * Usage of a native /v1/messages answer or stream event, in the chat Usage shape: the Message
 * (or message_start's `message`) usage, or message_delta's usage. Prompt tokens are input plus
 * cache reads and writes. message_delta usage holds only what it updates (output_tokens, maybe input).
 */
export function messagesUsage(body: Record<string, unknown>): Usage | undefined {
  const holder = isRecord(body.message) ? body.message : body;
  const usage = holder.usage;
  if (!isRecord(usage)) return undefined;
  const cacheRead = typeof usage.cache_read_input_tokens === 'number' ? count(usage.cache_read_input_tokens) : undefined;
  const prompt = count(usage.input_tokens) + (cacheRead ?? 0) + count(usage.cache_creation_input_tokens);
  const completion = count(usage.output_tokens);
  const result: Usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
  if (cacheRead !== undefined) result.cached_tokens = cacheRead;
  return result;
}

/**
 * Usage of a native Messages stream so far: message_start gives the input side, each message_delta
 * the output count so far (and input counts when it has them, which then win).
 */
export function mergeMessagesUsage(previous: Usage | undefined, event: Record<string, unknown>): Usage | undefined {
  const next = messagesUsage(event);
  if (!next || !previous || event.type !== 'message_delta') return next ?? previous;
  const usage = event.usage as JsonObject;
  const hasInput = typeof usage.input_tokens === 'number';
  const prompt = hasInput ? next.prompt_tokens : previous.prompt_tokens;
  const completion = typeof usage.output_tokens === 'number' ? next.completion_tokens : previous.completion_tokens;
  const merged: Usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
  const cached = hasInput && next.cached_tokens !== undefined ? next.cached_tokens : previous.cached_tokens;
  if (cached !== undefined) merged.cached_tokens = cached;
  return merged;
}
