// vLLM's chat and text completion answers, whole and streamed: the pydantic bodies
// (ChatCompletionResponse, CompletionResponse), the stream chunks with their deltas and
// logprobs, and the closing usage chunk, as read in vllm/entrypoints/openai/
// (chat_completion/serving.py, engine/serving.py). Separate from
// flavor-vllm.ts, which holds the server around them (routes, auth, validation errors,
// context checks, /v1/models, /load); of the options they need only whether a reasoning
// parser is configured. Non-streamed bodies carry the vLLM extension fields as null,
// stream chunks omit unset fields.

import type { Flavor, Piece, Plan, PlanChoice, Timing } from './flavor.ts';
import { tokenLogprobs, utf8Bytes } from './generate.ts';
import type { ResolvedOptions } from './options.ts';
import { SSE_DONE, sseEvent } from './sse.ts';
import { choiceText } from './surface-text.ts';

function usage(prompt: number, completion: number, reasoning: number | undefined, withDetails: boolean): Record<string, unknown> {
  const result: Record<string, unknown> = { prompt_tokens: prompt, total_tokens: prompt + completion, completion_tokens: completion };
  if (reasoning !== undefined) result.completion_tokens_details = { reasoning_tokens: reasoning };
  if (withDetails) result.prompt_tokens_details = null;
  return result;
}

/** DeltaMessage of one token, serialised with exclude_unset (only the fields that were set). */
function pieceDelta(piece: Piece): Record<string, unknown> {
  switch (piece.kind) {
    case 'content':
      return { content: piece.text };
    case 'reasoning':
      return { reasoning: piece.text };
    case 'tool-header':
      return { tool_calls: [{ id: piece.id, type: 'function', index: piece.toolIndex, function: { name: piece.name, arguments: '' } }] };
    case 'tool-args':
      return { tool_calls: [{ index: piece.toolIndex, function: { arguments: piece.text } }] };
  }
}

/** ChatCompletionLogProbsContent: token, logprob, bytes and the top alternatives. */
function logprobEntry(text: string, position: number, top: number): Record<string, unknown> {
  const probs = tokenLogprobs(text, position, top, VOCABULARY_SIZE);
  return {
    token: probs.chosen.token,
    logprob: probs.chosen.logprob,
    bytes: utf8Bytes(probs.chosen.token),
    top_logprobs: probs.top.map((alternative) => ({ token: alternative.token, logprob: alternative.logprob, bytes: utf8Bytes(alternative.token) })),
  };
}

/** Every generated token with text (tool-call headers are markup, not tokens of their own). */
function choiceLogprobs(choice: PlanChoice, top: number): unknown[] {
  const entries: unknown[] = [];
  choice.pieces.forEach((piece, position) => {
    if (piece.kind !== 'tool-header') entries.push(logprobEntry(piece.text, position, top));
  });
  return entries;
}

const VOCABULARY_SIZE = 151936;

/** The Flavor's renderBody, renderTick and renderEnd for vLLM. */
export function createVllmCompletions(options: ResolvedOptions): Pick<Flavor, 'renderBody' | 'renderTick' | 'renderEnd'> {
  // With a reasoning parser configured, vLLM reports completion_tokens_details.reasoning_tokens.
  const reasoningOf = (tokens: number): number | undefined => (options.reasoning ? tokens : undefined);

  const chunkBase = (plan: Plan): { id: string; object: string; created: number; model: string } => ({
    id: plan.id,
    object: plan.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
    created: plan.created,
    model: plan.model,
  });

  const chatTick = (plan: Plan, choice: PlanChoice, pieceIndex: number): string => {
    const piece = choice.pieces[pieceIndex];
    const last = pieceIndex === choice.pieces.length - 1;
    let out = '';
    if (pieceIndex === 0) {
      out += sseEvent({
        ...chunkBase(plan),
        choices: [{ index: choice.index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }],
      });
    }
    if (piece === undefined) return out;
    const delta = pieceDelta(piece);
    const logprobs = plan.logprobs !== undefined && piece.kind !== 'tool-header' ? { content: [logprobEntry(piece.text, pieceIndex, plan.logprobs)] } : null;
    // The finish reason rides on the chunk of the last token; after a tool call the
    // closing tag produces no delta, so the finish comes in a chunk of its own.
    const merged = last && (piece.kind === 'content' || piece.kind === 'reasoning');
    const stopReason = choice.stopSequence ?? null;
    out += sseEvent({
      ...chunkBase(plan),
      choices: [
        merged
          ? { index: choice.index, delta, logprobs, finish_reason: choice.finishReason, stop_reason: stopReason }
          : { index: choice.index, delta, logprobs, finish_reason: null },
      ],
    });
    if (last && !merged) {
      out += sseEvent({
        ...chunkBase(plan),
        choices: [{ index: choice.index, delta: {}, logprobs: null, finish_reason: choice.finishReason, stop_reason: stopReason }],
      });
    }
    return out;
  };

  const completionTick = (plan: Plan, choice: PlanChoice, pieceIndex: number): string => {
    const piece = choice.pieces[pieceIndex];
    const last = pieceIndex === choice.pieces.length - 1;
    return sseEvent({
      ...chunkBase(plan),
      choices: [
        {
          index: choice.index,
          text: piece !== undefined && piece.kind === 'content' ? piece.text : '',
          logprobs: null,
          finish_reason: last ? choice.finishReason : null,
          stop_reason: null,
        },
      ],
    });
  };

  const chatBody = (plan: Plan): string => {
    const choices = plan.choices.map((choice) => {
      let content = '';
      let reasoning = '';
      for (const piece of choice.pieces) {
        if (piece.kind === 'content') content += piece.text;
        else if (piece.kind === 'reasoning') reasoning += piece.text;
      }
      const message: Record<string, unknown> = {
        role: 'assistant',
        // Auto tool calls leave content null; a named/required call gets "".
        content: choice.toolCalls.length > 0 ? (choice.finishReason === 'stop' ? '' : null) : content,
        refusal: null,
        annotations: null,
        audio: null,
        function_call: null,
      };
      if (choice.toolCalls.length > 0) {
        message.tool_calls = choice.toolCalls.map((call) => ({
          id: call.id,
          type: 'function',
          function: { name: call.name, arguments: call.arguments },
        }));
      }
      message.reasoning = reasoning === '' ? null : reasoning;
      const logprobs = plan.logprobs !== undefined ? { content: choiceLogprobs(choice, plan.logprobs) } : null;
      // stop_reason: the stop string that ended the choice (None for EOS or length).
      return { index: choice.index, message, logprobs, finish_reason: choice.finishReason, stop_reason: choice.stopSequence ?? null, token_ids: null };
    });
    return JSON.stringify({
      id: plan.id,
      object: 'chat.completion',
      created: plan.created,
      model: plan.model,
      choices,
      service_tier: null,
      system_fingerprint: null,
      usage: usage(plan.promptTokens, plan.completionTokens, reasoningOf(plan.reasoningTokens), true),
      prompt_logprobs: null,
      prompt_token_ids: null,
      kv_transfer_params: null,
    });
  };

  const completionBody = (plan: Plan): string =>
    JSON.stringify({
      id: plan.id,
      object: 'text_completion',
      created: plan.created,
      model: plan.model,
      choices: plan.choices.map((choice) => ({
        index: choice.index,
        text: choiceText(choice).content,
        logprobs: null,
        finish_reason: choice.finishReason,
        stop_reason: null,
        prompt_logprobs: null,
      })),
      service_tier: null,
      system_fingerprint: null,
      usage: usage(plan.promptTokens, plan.completionTokens, undefined, true),
      kv_transfer_params: null,
    });

  return {
    renderBody: (plan) => (plan.kind === 'chat' ? chatBody(plan) : completionBody(plan)),
    renderTick: (plan, choice, pieceIndex) => (plan.kind === 'chat' ? chatTick(plan, choice, pieceIndex) : completionTick(plan, choice, pieceIndex)),
    renderEnd(plan: Plan, _timing: Timing) {
      if (!plan.includeUsage) return SSE_DONE;
      const final = {
        ...chunkBase(plan),
        choices: [],
        usage: usage(plan.promptTokens, plan.completionTokens, plan.kind === 'chat' ? reasoningOf(plan.reasoningTokens) : undefined, false),
      };
      return sseEvent(final) + SSE_DONE;
    },
  };
}
