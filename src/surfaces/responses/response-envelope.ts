/**
 * The Response object around the output items: the fields the official SDK types require, echoed
 * from the request as the Responses API does, plus status, usage and the chat <-> Responses
 * usage mappings. Shared by the JSON answer and the stream translators.
 */
import type { Usage } from '../../wire/types.ts';
import { count, idSuffix, isRecord, type ChatUsage, type JsonObject } from '../translate-common.ts';

/** What the translators need to know about the request they answer. */
export interface ResponsesContext {
  /** The response id (`resp_…`); output item ids are derived from it. */
  id: string;
  /** Creation time, Unix seconds. */
  createdAt: number;
  /** The public model name the client asked for. */
  model: string;
  /** The client's Responses request body, for the echo fields. */
  request: Record<string, unknown>;
  /** Whether the gateway keeps this response for previous_response_id (default: the request's `store === true`). */
  store?: boolean;
}

/** Responses usage from chat usage. */
export function responsesUsageFromChat(usage: ChatUsage): JsonObject {
  return {
    input_tokens: usage.prompt_tokens,
    input_tokens_details: { cached_tokens: usage.cached_tokens ?? 0 },
    output_tokens: usage.completion_tokens,
    output_tokens_details: { reasoning_tokens: usage.reasoning_tokens ?? 0 },
    total_tokens: usage.total_tokens,
  };
}

/** Chat usage (the metering shape) from a Responses `usage` object. */
export function chatUsageFromResponses(usage: unknown): Usage | undefined {
  if (!isRecord(usage)) return undefined;
  const input = count(usage.input_tokens);
  const output = count(usage.output_tokens);
  const result: Usage = {
    prompt_tokens: input,
    completion_tokens: output,
    total_tokens: typeof usage.total_tokens === 'number' ? count(usage.total_tokens) : input + output,
  };
  const details = usage.input_tokens_details;
  if (isRecord(details) && typeof details.cached_tokens === 'number') result.cached_tokens = count(details.cached_tokens);
  return result;
}

/** The Response status and incomplete_details for a chat finish_reason. */
export function responseStatus(finishReason: unknown): { status: 'completed' | 'incomplete'; incomplete: JsonObject | null } {
  if (finishReason === 'length') return { status: 'incomplete', incomplete: { reason: 'max_output_tokens' } };
  if (finishReason === 'content_filter') return { status: 'incomplete', incomplete: { reason: 'content_filter' } };
  return { status: 'completed', incomplete: null };
}

function echo(request: JsonObject, key: string, fallback: unknown): unknown {
  const value = request[key];
  return value === undefined ? fallback : value;
}

/** Fields of a Response that echo the request, in the order the API writes them. */
export function responseEnvelope(context: ResponsesContext, status: string): JsonObject {
  const request = context.request;
  const reasoning = isRecord(request.reasoning) ? request.reasoning : {};
  const text = isRecord(request.text) ? request.text : {};
  const envelope: JsonObject = {
    id: context.id,
    object: 'response',
    created_at: context.createdAt,
    status,
    background: false,
    error: null,
    incomplete_details: null,
    instructions: echo(request, 'instructions', null),
    max_output_tokens: echo(request, 'max_output_tokens', null),
    max_tool_calls: echo(request, 'max_tool_calls', null),
    model: context.model,
    output: [],
    parallel_tool_calls: echo(request, 'parallel_tool_calls', true),
    previous_response_id: echo(request, 'previous_response_id', null),
    reasoning: { effort: reasoning.effort ?? null, summary: reasoning.summary ?? null },
    store: context.store ?? request.store === true,
    temperature: echo(request, 'temperature', 1),
    text: { ...text, format: text.format ?? { type: 'text' } },
    tool_choice: echo(request, 'tool_choice', 'auto'),
    tools: echo(request, 'tools', []),
    top_p: echo(request, 'top_p', 1),
    truncation: echo(request, 'truncation', 'disabled'),
    usage: null,
    metadata: echo(request, 'metadata', {}),
  };
  if (typeof request.user === 'string') envelope.user = request.user;
  return envelope;
}

/** Output item ids derived from the response id, so a replay of the same answer keeps them. */
export function itemIds(responseId: string): { message: string; reasoning: string; functionCall: string } {
  const suffix = idSuffix(responseId);
  return { message: `msg_${suffix}`, reasoning: `rs_${suffix}`, functionCall: `fc_${suffix}` };
}
