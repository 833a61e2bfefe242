// vLLM's Messages (Anthropic), count_tokens and rerank answers, and the surfaces object
// that also hands out the Responses renderer (responses-vllm.ts), as read in
// vllm/entrypoints/anthropic/ (serving.py, protocol.py, api_router.py), the score/rerank
// protocol and vllm/entrypoints/openai/responses/serving.py (ids, context checks). The
// Anthropic surface is a converter over a chat stream with include_usage, dumped with
// exclude_unset (so message_start's message has no type/role) and, for full bodies,
// exclude_none. Errors that reach the Anthropic router come back as
// {"type":"error","error":{type,message}}.

import type { FlavorSurfaces, PlanChoice, Reply, SurfacePlan, SurfaceRenderer } from './flavor.ts';
import type { IdSource } from './generate.ts';
import type { ResolvedOptions } from './options.ts';
import { isRecord } from './request.ts';
import { responsesRenderer } from './responses-vllm.ts';
import { sseNamedEvent } from './sse.ts';
import { choiceText, surfaceOf, toolInput } from './surface-text.ts';

type Json = Record<string, unknown>;

// ---------------------------------------------------------------- Anthropic Messages

/** vLLM's stop_reason_map over the chat finish reason (a named tool choice finishes "stop": end_turn). */
function stopReason(choice: PlanChoice): string {
  switch (choice.finishReason) {
    case 'length':
      return 'max_tokens';
    case 'tool_calls':
      return 'tool_use';
    default:
      return 'end_turn';
  }
}

function messagesRenderer(ids: IdSource): SurfaceRenderer {
  /** Closes the open block; a thinking block first gets its signature. */
  const stopBlock = (surface: SurfacePlan): string => {
    if (surface.open === undefined) return '';
    let out = '';
    if (surface.open === 'reasoning') {
      out += sseNamedEvent('content_block_delta', {
        type: 'content_block_delta',
        delta: { type: 'signature_delta', signature: ids.hex() },
        index: surface.index,
      });
    }
    out += sseNamedEvent('content_block_stop', { type: 'content_block_stop', index: surface.index });
    surface.open = undefined;
    surface.index++;
    return out;
  };
  const startBlock = (surface: SurfacePlan, open: 'reasoning' | 'text' | 'tool', block: Json): string => {
    surface.open = open;
    return sseNamedEvent('content_block_start', { type: 'content_block_start', content_block: block, index: surface.index });
  };
  const delta = (surface: SurfacePlan, value: Json): string => sseNamedEvent('content_block_delta', { type: 'content_block_delta', delta: value, index: surface.index });

  return {
    body(plan) {
      const choice = plan.choices[0] as PlanChoice;
      const { content, reasoning } = choiceText(choice);
      const blocks: unknown[] = [];
      if (reasoning !== '') blocks.push({ type: 'thinking', thinking: reasoning, signature: ids.hex() });
      if (content !== '') blocks.push({ type: 'text', text: content });
      for (const call of choice.toolCalls) blocks.push({ type: 'tool_use', id: call.id, name: call.name, input: toolInput(call.arguments) });
      // model_dump(exclude_none=True): no stop_sequence, no cache token counts.
      return JSON.stringify({
        id: plan.id,
        type: 'message',
        role: 'assistant',
        content: blocks,
        model: plan.model,
        stop_reason: stopReason(choice),
        usage: { input_tokens: plan.promptTokens, output_tokens: plan.completionTokens },
      });
    },
    tick(plan, choice, pieceIndex) {
      const surface = surfaceOf(plan);
      const piece = choice.pieces[pieceIndex];
      let out = '';
      if (pieceIndex === 0) {
        // From the chat stream's first chunk (the role chunk, with continuous usage); exclude_unset drops type and role.
        const message = { id: plan.id, content: [], model: plan.model, stop_reason: null, stop_sequence: null, usage: { input_tokens: plan.promptTokens, output_tokens: 0 } };
        out += sseNamedEvent('message_start', { type: 'message_start', message });
      }
      if (piece === undefined) return out;
      switch (piece.kind) {
        case 'reasoning':
          if (surface.open !== 'reasoning') out += stopBlock(surface) + startBlock(surface, 'reasoning', { type: 'thinking', thinking: '' });
          out += delta(surface, { type: 'thinking_delta', thinking: piece.text });
          break;
        case 'content':
          if (piece.text === '') break;
          if (surface.open !== 'text') out += stopBlock(surface) + startBlock(surface, 'text', { type: 'text', text: '' });
          out += delta(surface, { type: 'text_delta', text: piece.text });
          break;
        case 'tool-header':
          out += stopBlock(surface) + startBlock(surface, 'tool', { type: 'tool_use', id: piece.id, name: piece.name, input: {} });
          break;
        case 'tool-args':
          out += delta(surface, { type: 'input_json_delta', partial_json: piece.text });
          break;
      }
      return out;
    },
    end(plan) {
      const choice = plan.choices[0] as PlanChoice;
      const surface = surfaceOf(plan);
      // The usage chunk closes the open block and carries the stop reason; [DONE] becomes message_stop.
      return (
        stopBlock(surface) +
        sseNamedEvent('message_delta', {
          type: 'message_delta',
          delta: { stop_reason: stopReason(choice) },
          usage: { input_tokens: plan.promptTokens, output_tokens: plan.completionTokens },
        }) +
        sseNamedEvent('message_stop', { type: 'message_stop' })
      );
    },
  };
}

/** translate_error_response(): the OpenAI-shaped ErrorResponse re-shaped for Anthropic clients, same status. */
function anthropicError(reply: Reply): Reply {
  let parsed: unknown;
  try {
    parsed = JSON.parse(reply.body);
  } catch {
    return reply;
  }
  const error = isRecord(parsed) ? parsed.error : undefined;
  if (!isRecord(error) || typeof error.message !== 'string') return reply;
  return { status: reply.status, body: JSON.stringify({ type: 'error', error: { type: String(error.type), message: error.message } }) };
}

// ---------------------------------------------------------------- the surfaces object

export function createVllmSurfaces(options: ResolvedOptions, ids: IdSource): FlavorSurfaces {
  return {
    newSurface: (_kind, request, maxOutputTokens) => ({
      request,
      responseId: `resp_${ids.hex()}`,
      messageId: `msg_${ids.hex()}`,
      reasoningId: `rs_${ids.hex()}`,
      // The sampling budget: max_output_tokens, or what the context leaves.
      maxOutputTokens: typeof request.max_output_tokens === 'number' ? Math.min(request.max_output_tokens, maxOutputTokens) : maxOutputTokens,
      sequence: 0,
      index: 0,
      open: undefined,
      hadReasoning: false,
      hadText: false,
    }),
    responses: responsesRenderer(),
    messages: messagesRenderer(ids),
    messagesError: anthropicError,
    responsesContext(promptTokens, maxTokens, opts) {
      const limit = opts.maxModelLen;
      if (promptTokens >= limit) {
        const message = `The engine prompt length ${promptTokens} exceeds the max_model_len ${limit}. Please reduce prompt.`;
        const body = JSON.stringify({ error: { message, type: 'invalid_request_error', param: 'input', code: 400 } });
        return { error: { status: 400, body }, completionTokens: 0, finishReason: 'length' };
      }
      // get_max_tokens(): max_output_tokens is capped by the room left, never refused.
      const room = limit - promptTokens;
      if (maxTokens !== undefined) return { completionTokens: Math.min(maxTokens, room), finishReason: 'length' };
      return room < opts.defaultMaxTokens ? { completionTokens: room, finishReason: 'length' } : { completionTokens: opts.defaultMaxTokens, finishReason: 'stop' };
    },
    countTokens: (_surface, tokens) => ({
      status: 200,
      body: JSON.stringify({ input_tokens: tokens, context_management: { original_input_tokens: tokens } }),
    }),
    renderRerank(fields, scores, promptTokens, id) {
      return JSON.stringify({
        id: `rerank-${id !== '' ? id : ids.hex()}`,
        model: options.model,
        usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
        results: scores.map(({ index, score }) => ({ index, document: { text: fields.documents[index], multi_modal: null }, relevance_score: score })),
      });
    },
    // A cross-encoder's sigmoid output: a probability.
    rerankScore: (relevance) => relevance,
    rerankDisabled: () => ({
      status: 400,
      body: JSON.stringify({ error: { message: 'The model does not support Rerank (Score) API', type: 'BadRequestError', param: null, code: 400 } }),
    }),
  };
}
