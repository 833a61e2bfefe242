// llama-server's Responses, Messages, count_tokens and rerank answers, as read in
// tools/server/server-task.cpp (to_json_oaicompat_resp*, to_json_anthropic*),
// server-context.cpp (handle_count_tokens, post_rerank) and server-common.cpp
// (format_response_rerank), and checked against test/fixtures/llamacpp/. Both surfaces
// are chat completions underneath; only the rendering differs. Keys keep the order
// nlohmann::ordered_json gives them. No sequence_number, output_index or
// content_index in this release's Responses stream, and errors stay llama.cpp's own
// `{"error":{code,message,type}}`, on the Messages surface too.

import { timings } from './completions-llamacpp.ts';
import type { FlavorSurfaces, Plan, PlanChoice, Reply, SurfaceRenderer } from './flavor.ts';
import type { IdSource } from './generate.ts';
import type { ResolvedOptions } from './options.ts';
import { sseNamedEvent } from './sse.ts';
import { choiceText, surfaceOf, toolInput } from './surface-text.ts';

type ErrorReply = (kind: 'invalid' | 'not_supported', message: string) => Reply;

// ---------------------------------------------------------------- Responses

function responsesUsage(choice: PlanChoice, output: number): Record<string, unknown> {
  return {
    input_tokens: choice.promptTokens,
    output_tokens: output,
    total_tokens: output + choice.promptTokens,
    input_tokens_details: { cached_tokens: choice.cachedTokens },
  };
}

function textPart(text: string): Record<string, unknown> {
  return { type: 'output_text', annotations: [], logprobs: [], text };
}

/** The output items of the final stream result (to_json_oaicompat_resp_stream): their key order differs from the body's. */
function streamItems(plan: Plan, choice: PlanChoice): { events: string; items: unknown[] } {
  const surface = surfaceOf(plan);
  const { content, reasoning } = choiceText(choice);
  let events = '';
  const items: unknown[] = [];
  if (reasoning !== '') {
    const item = {
      id: surface.reasoningId,
      summary: [],
      type: 'reasoning',
      content: [{ text: reasoning, type: 'reasoning_text' }],
      encrypted_content: '',
    };
    events += sseNamedEvent('response.output_item.done', { type: 'response.output_item.done', item });
    items.push(item);
  }
  if (content !== '') {
    events += sseNamedEvent('response.output_text.done', { type: 'response.output_text.done', item_id: surface.messageId, text: content });
    const part = textPart(content);
    events += sseNamedEvent('response.content_part.done', { type: 'response.content_part.done', item_id: surface.messageId, part });
    const item = { type: 'message', status: 'completed', id: surface.messageId, content: [part], role: 'assistant' };
    events += sseNamedEvent('response.output_item.done', { type: 'response.output_item.done', item });
    items.push(item);
  }
  for (const call of choice.toolCalls) {
    const item = { id: `fc_${call.id}`, type: 'function_call', status: 'completed', arguments: call.arguments, call_id: `call_${call.id}`, name: call.name };
    events += sseNamedEvent('response.output_item.done', { type: 'response.output_item.done', item });
    items.push(item);
  }
  return { events, items };
}

function responsesRenderer(): SurfaceRenderer {
  return {
    body(plan) {
      const choice = plan.choices[0] as PlanChoice;
      const surface = surfaceOf(plan);
      const { content, reasoning } = choiceText(choice);
      const output: unknown[] = [];
      if (reasoning !== '') {
        output.push({
          id: surface.reasoningId,
          summary: [],
          type: 'reasoning',
          content: [{ text: reasoning, type: 'reasoning_text' }],
          encrypted_content: '',
          status: 'completed',
        });
      }
      if (content !== '') {
        output.push({ content: [textPart(content)], id: surface.messageId, role: 'assistant', status: 'completed', type: 'message' });
      }
      for (const call of choice.toolCalls) {
        output.push({ id: `fc_${call.id}`, type: 'function_call', status: 'completed', arguments: call.arguments, call_id: `call_${call.id}`, name: call.name });
      }
      const now = Math.floor(Date.now() / 1000);
      // A max_output_tokens cut still says "completed": this release reports no incomplete status.
      return JSON.stringify({
        completed_at: now,
        created_at: now,
        id: surface.responseId,
        model: plan.model,
        object: 'response',
        output,
        status: 'completed',
        usage: responsesUsage(choice, plan.completionTokens),
      });
    },
    tick(plan, choice, pieceIndex) {
      const surface = surfaceOf(plan);
      const piece = choice.pieces[pieceIndex];
      let out = '';
      if (pieceIndex === 0) {
        const stub = { id: surface.responseId, object: 'response', status: 'in_progress' };
        out += sseNamedEvent('response.created', { type: 'response.created', response: stub });
        out += sseNamedEvent('response.in_progress', { type: 'response.in_progress', response: stub });
      }
      if (piece === undefined) return out;
      switch (piece.kind) {
        case 'reasoning':
          if (!surface.hadReasoning) {
            surface.hadReasoning = true;
            const item = { id: surface.reasoningId, summary: [], type: 'reasoning', content: [], encrypted_content: '', status: 'in_progress' };
            out += sseNamedEvent('response.output_item.added', { type: 'response.output_item.added', item });
          }
          out += sseNamedEvent('response.reasoning_text.delta', { type: 'response.reasoning_text.delta', delta: piece.text, item_id: surface.reasoningId });
          break;
        case 'content':
          if (piece.text === '') break;
          if (!surface.hadText) {
            surface.hadText = true;
            const item = { content: [], id: surface.messageId, role: 'assistant', status: 'in_progress', type: 'message' };
            out += sseNamedEvent('response.output_item.added', { type: 'response.output_item.added', item });
            out += sseNamedEvent('response.content_part.added', {
              type: 'response.content_part.added',
              item_id: surface.messageId,
              part: { type: 'output_text', text: '' },
            });
          }
          out += sseNamedEvent('response.output_text.delta', { type: 'response.output_text.delta', item_id: surface.messageId, delta: piece.text });
          break;
        case 'tool-header': {
          const item = { id: `fc_${piece.id}`, arguments: '', call_id: `call_${piece.id}`, name: piece.name, type: 'function_call', status: 'in_progress' };
          out += sseNamedEvent('response.output_item.added', { type: 'response.output_item.added', item });
          break;
        }
        case 'tool-args': {
          const call = choice.toolCalls[piece.toolIndex];
          out += sseNamedEvent('response.function_call_arguments.delta', {
            type: 'response.function_call_arguments.delta',
            delta: piece.text,
            item_id: `fc_${call?.id ?? ''}`,
          });
          break;
        }
      }
      return out;
    },
    end(plan, timing) {
      const choice = plan.choices[0] as PlanChoice;
      const surface = surfaceOf(plan);
      const { events, items } = streamItems(plan, choice);
      const response = {
        id: surface.responseId,
        object: 'response',
        created_at: Math.floor(Date.now() / 1000),
        status: 'completed',
        model: plan.model,
        output: items,
        usage: responsesUsage(choice, plan.completionTokens),
      };
      return events + sseNamedEvent('response.completed', { type: 'response.completed', response, timings: timings(choice, plan.completionTokens, timing) });
    },
  };
}

// ---------------------------------------------------------------- Anthropic Messages

/** EOS or a stop word end the turn (or hand over to tools); anything else ran out of tokens. */
function stopReason(choice: PlanChoice): string {
  if (choice.finishReason === 'length') return 'max_tokens';
  return choice.toolCalls.length > 0 ? 'tool_use' : 'end_turn';
}

function messagesUsage(choice: PlanChoice, output: number): Record<string, number> {
  return { cache_read_input_tokens: choice.cachedTokens, input_tokens: choice.promptTokens - choice.cachedTokens, output_tokens: output };
}

function messagesRenderer(): SurfaceRenderer {
  return {
    body(plan) {
      const choice = plan.choices[0] as PlanChoice;
      const { content, reasoning } = choiceText(choice);
      const blocks: unknown[] = [];
      // No cryptographic signature for a local model: llama.cpp sends an empty one.
      if (reasoning !== '') blocks.push({ type: 'thinking', thinking: reasoning, signature: '' });
      if (content !== '') blocks.push({ type: 'text', text: content });
      for (const call of choice.toolCalls) blocks.push({ type: 'tool_use', id: call.id, name: call.name, input: toolInput(call.arguments) });
      return JSON.stringify({
        id: plan.id,
        type: 'message',
        role: 'assistant',
        content: blocks,
        model: plan.model,
        stop_reason: stopReason(choice),
        stop_sequence: choice.stopSequence ?? null,
        usage: messagesUsage(choice, plan.completionTokens),
      });
    },
    tick(plan, choice, pieceIndex) {
      const surface = surfaceOf(plan);
      const piece = choice.pieces[pieceIndex];
      let out = '';
      if (pieceIndex === 0) {
        const message = {
          id: plan.id,
          type: 'message',
          role: 'assistant',
          content: [],
          model: plan.model,
          stop_reason: null,
          stop_sequence: null,
          usage: messagesUsage(choice, 0),
        };
        out += sseNamedEvent('message_start', { type: 'message_start', message });
      }
      if (piece === undefined) return out;
      // Blocks: thinking at 0, text after it, then one per tool call.
      const textIndex = surface.hadReasoning ? 1 : 0;
      if (piece.kind === 'reasoning') {
        if (!surface.hadReasoning) {
          surface.hadReasoning = true;
          out += sseNamedEvent('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '' } });
        }
        out += sseNamedEvent('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: piece.text } });
      } else if (piece.kind === 'content' && piece.text !== '') {
        if (!surface.hadText) {
          surface.hadText = true;
          out += sseNamedEvent('content_block_start', { type: 'content_block_start', index: textIndex, content_block: { type: 'text', text: '' } });
        }
        out += sseNamedEvent('content_block_delta', { type: 'content_block_delta', index: textIndex, delta: { type: 'text_delta', text: piece.text } });
      } else if (piece.kind === 'tool-header' || piece.kind === 'tool-args') {
        const index = textIndex + (surface.hadText ? 1 : 0) + piece.toolIndex;
        if (piece.kind === 'tool-header') {
          out += sseNamedEvent('content_block_start', {
            type: 'content_block_start',
            index,
            content_block: { type: 'tool_use', id: piece.id, name: piece.name },
          });
        } else {
          out += sseNamedEvent('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: piece.text } });
        }
      }
      return out;
    },
    end(plan) {
      const choice = plan.choices[0] as PlanChoice;
      const surface = surfaceOf(plan);
      let out = '';
      if (surface.hadReasoning) {
        out += sseNamedEvent('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: '' } });
        out += sseNamedEvent('content_block_stop', { type: 'content_block_stop', index: 0 });
      }
      const textIndex = surface.hadReasoning ? 1 : 0;
      if (surface.hadText) out += sseNamedEvent('content_block_stop', { type: 'content_block_stop', index: textIndex });
      for (let i = 0; i < choice.toolCalls.length; i++) {
        out += sseNamedEvent('content_block_stop', { type: 'content_block_stop', index: textIndex + (surface.hadText ? 1 : 0) + i });
      }
      out += sseNamedEvent('message_delta', {
        type: 'message_delta',
        delta: { stop_reason: stopReason(choice), stop_sequence: choice.stopSequence ?? null },
        usage: { output_tokens: plan.completionTokens },
      });
      return out + sseNamedEvent('message_stop', { type: 'message_stop' });
    },
  };
}

// ---------------------------------------------------------------- the surfaces object

export function createLlamacppSurfaces(options: ResolvedOptions, ids: IdSource, error: ErrorReply): FlavorSurfaces {
  return {
    newSurface: (_kind, request, maxOutputTokens) => ({
      request,
      responseId: `resp_${ids.alnum()}`,
      messageId: `msg_${ids.alnum()}`,
      reasoningId: `rs_${ids.alnum()}`,
      maxOutputTokens,
      sequence: 0,
      index: 0,
      open: undefined,
      hadReasoning: false,
      hadText: false,
    }),
    responses: responsesRenderer(),
    messages: messagesRenderer(),
    messagesError: (reply) => reply,
    countTokens: (surface, tokens) => ({
      status: 200,
      body: JSON.stringify(surface === 'responses' ? { input_tokens: tokens, object: 'response.input_tokens' } : { input_tokens: tokens }),
    }),
    renderRerank(fields, scores, promptTokens) {
      if (fields.tei) {
        return JSON.stringify(scores.map(({ index, score }) => (fields.returnText ? { index, score, text: fields.documents[index] } : { index, score })));
      }
      return JSON.stringify({
        // The request's model, like the embeddings answer (format_response_rerank).
        model: fields.model ?? options.model,
        object: 'list',
        usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
        results: scores.map(({ index, score }) => ({ index, relevance_score: score })),
      });
    },
    // A reranker's raw logit: about -5 for unrelated, +5 for a close match.
    rerankScore: (relevance) => relevance * 10 - 5,
    rerankDisabled: () => error('not_supported', 'This server does not support reranking. Start it with `--reranking`'),
  };
}
