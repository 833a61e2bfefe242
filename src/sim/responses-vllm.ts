// vLLM's Responses answers, whole and streamed, as read in vllm/entrypoints/openai/responses/
// (serving.py, protocol.py, simple_streaming_events.py, api_router.py). Responses objects
// are pydantic model_dump() output (every field, nulls included; key order = field order,
// the openai types' being alphabetical), stream events carry a sequence_number from 0.
// Separate from surfaces-vllm.ts (the Messages surface, count_tokens, rerank and the
// surfaces object that hands this renderer out) because the Responses stream is a state
// machine of its own: output items opened and closed around each token.

import type { Plan, PlanChoice, SurfacePlan, SurfaceRenderer } from './flavor.ts';
import { isRecord } from './request.ts';
import { sseNamedEvent } from './sse.ts';
import { choiceText, surfaceOf } from './surface-text.ts';

type Json = Record<string, unknown>;

/** The hex part of a vLLM tool call id (`chatcmpl-tool-<hex>`), for the Responses item ids. */
function callHex(id: string): string {
  return id.slice(id.lastIndexOf('-') + 1);
}

/** A request tool as vLLM echoes it (openai FunctionTool: name, parameters, strict, type, description). */
function echoTool(tool: unknown): unknown {
  if (!isRecord(tool) || tool.type !== 'function') return tool;
  return { name: tool.name, parameters: tool.parameters ?? null, strict: tool.strict ?? null, type: 'function', description: tool.description ?? null };
}

function echoToolChoice(value: unknown): unknown {
  if (isRecord(value) && value.type === 'function') return { name: value.name, type: 'function' };
  return value ?? 'auto';
}

function responsesUsage(plan: Plan): Json {
  return {
    input_tokens: plan.promptTokens,
    input_tokens_details: { cached_tokens: plan.cachedTokens, input_tokens_per_turn: [plan.promptTokens], cached_tokens_per_turn: [plan.cachedTokens] },
    output_tokens: plan.completionTokens,
    output_tokens_details: {
      reasoning_tokens: plan.reasoningTokens,
      tool_output_tokens: 0,
      output_tokens_per_turn: [plan.completionTokens],
      tool_output_tokens_per_turn: [0],
    },
    total_tokens: plan.promptTokens + plan.completionTokens,
  };
}

/** ResponsesResponse.from_request(): the request echoed next to status, output and usage. */
function responseObject(plan: Plan, status: 'in_progress' | 'completed' | 'incomplete', output: unknown[], usage: Json | null): Json {
  const surface = surfaceOf(plan);
  const request = surface.request;
  const number = (value: unknown, fallback: number): number => (typeof value === 'number' ? value : fallback);
  return {
    id: surface.responseId,
    created_at: plan.created,
    incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: typeof request.instructions === 'string' ? request.instructions : null,
    metadata: isRecord(request.metadata) ? request.metadata : null,
    model: plan.model,
    object: 'response',
    output,
    parallel_tool_calls: request.parallel_tool_calls !== false,
    temperature: number(request.temperature, 1.0),
    tool_choice: echoToolChoice(request.tool_choice),
    tools: Array.isArray(request.tools) ? request.tools.map(echoTool) : [],
    top_p: number(request.top_p, 1.0),
    background: request.background === true,
    max_output_tokens: surface.maxOutputTokens,
    max_tool_calls: typeof request.max_tool_calls === 'number' ? request.max_tool_calls : null,
    previous_response_id: null,
    prompt: null,
    reasoning: isRecord(request.reasoning) ? request.reasoning : null,
    service_tier: typeof request.service_tier === 'string' ? request.service_tier : 'auto',
    status,
    text: isRecord(request.text) ? request.text : null,
    top_logprobs: null,
    truncation: typeof request.truncation === 'string' ? request.truncation : 'disabled',
    usage,
    user: typeof request.user === 'string' ? request.user : null,
    input_messages: null,
    output_messages: null,
  };
}

function outputText(text: string, logprobs: unknown[] | null): Json {
  return { annotations: [], text, type: 'output_text', logprobs };
}

function reasoningItem(id: string, text: string | undefined, status: 'in_progress' | 'completed' | null): Json {
  return {
    id,
    summary: [],
    type: 'reasoning',
    content: text === undefined ? null : [{ text, type: 'reasoning_text' }],
    encrypted_content: null,
    status,
  };
}

function messageItem(id: string, text: string | undefined, status: 'in_progress' | 'completed'): Json {
  return { id, content: text === undefined ? [] : [outputText(text, null)], role: 'assistant', status, type: 'message' };
}

function callItem(call: { id: string; name: string; arguments: string }, status: 'in_progress' | 'completed' | null, withArguments: boolean): Json {
  const hex = callHex(call.id);
  return { arguments: withArguments ? call.arguments : '', call_id: `call_${hex}`, name: call.name, type: 'function_call', id: `fc_${hex}`, status };
}

function finalStatus(choice: PlanChoice): 'completed' | 'incomplete' {
  return choice.finishReason === 'length' ? 'incomplete' : 'completed';
}

function responsesOutput(plan: Plan, choice: PlanChoice): unknown[] {
  const surface = surfaceOf(plan);
  const { content, reasoning } = choiceText(choice);
  const output: unknown[] = [];
  if (reasoning !== '') output.push(reasoningItem(surface.reasoningId, reasoning, null));
  if (content !== '' || choice.toolCalls.length === 0) output.push(messageItem(surface.messageId, content !== '' ? content : undefined, 'completed'));
  for (const call of choice.toolCalls) output.push(callItem(call, null, true));
  return output;
}

/** Numbers every event of a Responses stream in order; keys alphabetical, as the openai event types declare them. */
function event(surface: SurfacePlan, type: string, fields: Json): string {
  const all: Json = { ...fields, sequence_number: surface.sequence++, type };
  const data: Json = {};
  for (const key of Object.keys(all).sort()) data[key] = all[key];
  return sseNamedEvent(type, data);
}

/** The events that close the item open now (reasoning, message or function call), and the next output_index. */
function closeItem(plan: Plan, choice: PlanChoice): string {
  const surface = surfaceOf(plan);
  const { content, reasoning } = choiceText(choice);
  const at = surface.index;
  let out = '';
  if (surface.open === 'reasoning') {
    const item = surface.reasoningId;
    out += event(surface, 'response.reasoning_text.done', { content_index: 0, item_id: item, output_index: at, text: reasoning });
    out += event(surface, 'response.content_part.done', {
      content_index: 0,
      item_id: item,
      output_index: at,
      part: { text: reasoning, type: 'reasoning_text' },
    });
    out += event(surface, 'response.output_item.done', { item: reasoningItem(item, reasoning, 'completed'), output_index: at });
  } else if (surface.open === 'text') {
    const item = surface.messageId;
    out += event(surface, 'response.output_text.done', { content_index: 0, item_id: item, logprobs: [], output_index: at, text: content });
    out += event(surface, 'response.content_part.done', { content_index: 0, item_id: item, output_index: at, part: outputText(content, null) });
    out += event(surface, 'response.output_item.done', { item: messageItem(item, content, 'completed'), output_index: at });
  } else if (surface.open === 'tool') {
    const call = choice.toolCalls[choice.toolCalls.length - 1];
    if (call !== undefined) {
      out += event(surface, 'response.function_call_arguments.done', {
        arguments: call.arguments,
        item_id: `fc_${callHex(call.id)}`,
        name: call.name,
        output_index: at,
      });
      out += event(surface, 'response.output_item.done', { item: callItem(call, 'completed', true), output_index: at });
    }
  }
  if (surface.open !== undefined) surface.index++;
  surface.open = undefined;
  return out;
}

export function responsesRenderer(): SurfaceRenderer {
  return {
    body(plan) {
      const choice = plan.choices[0] as PlanChoice;
      return JSON.stringify(responseObject(plan, finalStatus(choice), responsesOutput(plan, choice), responsesUsage(plan)));
    },
    // Sent as soon as the request is accepted, before the first token.
    start(plan) {
      const surface = surfaceOf(plan);
      const initial = responseObject(plan, 'in_progress', [], null);
      return event(surface, 'response.created', { response: initial }) + event(surface, 'response.in_progress', { response: initial });
    },
    tick(plan, choice, pieceIndex) {
      const surface = surfaceOf(plan);
      const piece = choice.pieces[pieceIndex];
      if (piece === undefined) return '';
      let out = '';
      switch (piece.kind) {
        case 'reasoning':
          if (surface.open !== 'reasoning') {
            out += closeItem(plan, choice);
            surface.open = 'reasoning';
            out += event(surface, 'response.output_item.added', { item: reasoningItem(surface.reasoningId, undefined, 'in_progress'), output_index: surface.index });
            out += event(surface, 'response.content_part.added', {
              content_index: 0,
              item_id: surface.reasoningId,
              output_index: surface.index,
              part: { text: '', type: 'reasoning_text' },
            });
          }
          out += event(surface, 'response.reasoning_text.delta', {
            content_index: 0,
            delta: piece.text,
            item_id: surface.reasoningId,
            output_index: surface.index,
          });
          break;
        case 'content':
          // Empty text (a token cut by a stop string) is filtered out.
          if (piece.text === '') break;
          if (surface.open !== 'text') {
            out += closeItem(plan, choice);
            surface.open = 'text';
            out += event(surface, 'response.output_item.added', { item: messageItem(surface.messageId, undefined, 'in_progress'), output_index: surface.index });
            out += event(surface, 'response.content_part.added', {
              content_index: 0,
              item_id: surface.messageId,
              output_index: surface.index,
              part: outputText('', []),
            });
          }
          out += event(surface, 'response.output_text.delta', {
            content_index: 0,
            delta: piece.text,
            item_id: surface.messageId,
            logprobs: [],
            output_index: surface.index,
          });
          break;
        case 'tool-header': {
          out += closeItem(plan, choice);
          surface.open = 'tool';
          const call = choice.toolCalls[piece.toolIndex] ?? { id: piece.id, name: piece.name, arguments: '' };
          out += event(surface, 'response.output_item.added', { item: callItem(call, 'in_progress', false), output_index: surface.index });
          break;
        }
        case 'tool-args': {
          const call = choice.toolCalls[piece.toolIndex];
          out += event(surface, 'response.function_call_arguments.delta', {
            delta: piece.text,
            item_id: `fc_${callHex(call?.id ?? '')}`,
            output_index: surface.index,
          });
          break;
        }
      }
      return out;
    },
    end(plan) {
      const choice = plan.choices[0] as PlanChoice;
      const surface = surfaceOf(plan);
      const closing = closeItem(plan, choice);
      // Always response.completed; an answer cut by max_output_tokens says so in its status.
      const final = responseObject(plan, finalStatus(choice), responsesOutput(plan, choice), responsesUsage(plan));
      return closing + event(surface, 'response.completed', { response: final });
    },
  };
}
