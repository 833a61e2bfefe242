// llama-server's chat and text completion answers, whole and streamed: result_timings,
// the usage block, the per-token deltas and logprobs (server-task.cpp, server-common.cpp,
// common/chat.cpp), checked against test/fixtures/llamacpp/. Separate from
// flavor-llamacpp.ts, which holds the server around them (routes, auth, errors, context
// checks, /slots, /props, /v1/models); these renderers need nothing of the simulator's
// options, only the plan, and surfaces-llamacpp.ts shares their timings. JSON keys keep
// the order nlohmann::ordered_json gives them.

import type { Piece, Plan, PlanChoice, Timing } from './flavor.ts';
import { tokenLogprobs, utf8Bytes } from './generate.ts';
import { sseEvent } from './sse.ts';
import { choiceText } from './surface-text.ts';

/** The build the simulated server reports (system_fingerprint, /props build_info). */
export const BUILD_INFO = 'b1-de3ff81';

interface Usage {
  completion_tokens: number;
  prompt_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

function usage(choice: { promptTokens: number; cachedTokens: number }, completion: number): Usage {
  return {
    completion_tokens: completion,
    prompt_tokens: choice.promptTokens,
    total_tokens: completion + choice.promptTokens,
    prompt_tokens_details: { cached_tokens: choice.cachedTokens },
  };
}

/** result_timings::to_json(); time spent before the first token counts as prompt processing. */
export function timings(choice: { promptTokens: number; cachedTokens: number }, completion: number, timing: Timing): Record<string, number> {
  const promptN = choice.promptTokens - choice.cachedTokens;
  const promptMs = Math.max(timing.firstTokenAt - timing.startedAt, 0.001);
  const predictedMs = Math.max(timing.endedAt - timing.firstTokenAt, 0.001);
  return {
    cache_n: choice.cachedTokens,
    prompt_n: promptN,
    prompt_ms: promptMs,
    prompt_per_token_ms: promptMs / Math.max(promptN, 1),
    prompt_per_second: (1000 / promptMs) * promptN,
    predicted_n: completion,
    predicted_ms: predictedMs,
    predicted_per_token_ms: predictedMs / Math.max(completion, 1),
    predicted_per_second: (1000 / predictedMs) * completion,
  };
}

/** common_chat_msg_diff_to_json_oaicompat(): the delta of one token. */
function pieceDelta(piece: Piece): Record<string, unknown> {
  switch (piece.kind) {
    case 'content':
      return { content: piece.text };
    case 'reasoning':
      return { reasoning_content: piece.text };
    case 'tool-header':
      return { tool_calls: [{ index: piece.toolIndex, id: piece.id, type: 'function', function: { name: piece.name, arguments: '' } }] };
    case 'tool-args':
      return { tool_calls: [{ index: piece.toolIndex, function: { arguments: piece.text } }] };
  }
}

/** Vocabulary size the token ids of logprobs are drawn from (the recorded model's n_vocab). */
const VOCABULARY_SIZE = 151936;

/** completion_token_output::to_json(): one token with its alternatives. */
function logprobEntry(text: string, position: number, top: number): Record<string, unknown> {
  const probs = tokenLogprobs(text, position, top, VOCABULARY_SIZE);
  return {
    id: probs.chosen.id,
    token: probs.chosen.token,
    bytes: utf8Bytes(probs.chosen.token),
    logprob: probs.chosen.logprob,
    top_logprobs: probs.top.map((alternative) => ({
      id: alternative.id,
      token: alternative.token,
      bytes: utf8Bytes(alternative.token),
      logprob: alternative.logprob,
    })),
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

function chatChunk(plan: Plan, choices: unknown[]): Record<string, unknown> {
  return {
    choices,
    created: plan.created,
    id: plan.id,
    model: plan.model,
    system_fingerprint: BUILD_INFO,
    object: 'chat.completion.chunk',
  };
}

export function chatTick(plan: Plan, choice: PlanChoice, pieceIndex: number, timing: Timing): string {
  const piece = choice.pieces[pieceIndex];
  let out = '';
  // The first partial result always opens with the role delta (content null).
  if (pieceIndex === 0) {
    out += sseEvent(chatChunk(plan, [{ finish_reason: null, index: choice.index, delta: { role: 'assistant', content: null } }]));
  }
  // A token cut to nothing by a stop sequence leaves no diff to send.
  if (piece !== undefined && !(piece.kind === 'content' && piece.text === '')) {
    const delta: Record<string, unknown> = { finish_reason: null, index: choice.index, delta: pieceDelta(piece) };
    if (plan.logprobs !== undefined && piece.kind !== 'tool-header') {
      delta.logprobs = { content: [logprobEntry(piece.text, pieceIndex, plan.logprobs)] };
    }
    out += sseEvent(chatChunk(plan, [delta]));
  }
  if (pieceIndex === choice.pieces.length - 1) {
    // The final result: an empty delta with the finish reason; timings go on the
    // last chunk, which is the usage chunk when one follows. Each choice is a task of
    // its own, so with n > 1 every choice ends with its own finish (and usage) chunk.
    const finish = chatChunk(plan, [{ finish_reason: choice.finishReason, index: choice.index, delta: {} }]);
    if (!plan.includeUsage) finish.timings = timings(choice, choice.pieces.length, timing);
    out += sseEvent(finish);
    if (plan.includeUsage) {
      const last = chatChunk(plan, []);
      last.usage = usage(choice, choice.pieces.length);
      last.timings = timings(choice, choice.pieces.length, timing);
      out += sseEvent(last);
    }
  }
  return out;
}

export function completionTick(plan: Plan, choice: PlanChoice, pieceIndex: number, timing: Timing): string {
  const piece = choice.pieces[pieceIndex];
  const base = { created: plan.created, model: plan.model, system_fingerprint: BUILD_INFO, object: 'text_completion' };
  let out = sseEvent({
    choices: [{ text: piece?.kind === 'content' ? piece.text : '', index: choice.index, logprobs: null, finish_reason: null }],
    ...base,
    id: plan.id,
  });
  if (pieceIndex === choice.pieces.length - 1) {
    // The final result of /v1/completions always carries usage and timings.
    out += sseEvent({
      choices: [{ text: '', index: choice.index, logprobs: null, finish_reason: choice.finishReason }],
      ...base,
      usage: usage(choice, choice.pieces.length),
      id: plan.id,
      timings: timings(choice, choice.pieces.length, timing),
    });
  }
  return out;
}

function chatMessage(choice: PlanChoice): Record<string, unknown> {
  let content = '';
  let reasoning = '';
  for (const piece of choice.pieces) {
    if (piece.kind === 'content') content += piece.text;
    else if (piece.kind === 'reasoning') reasoning += piece.text;
  }
  // common_chat_msg::to_json_oaicompat()
  const message: Record<string, unknown> = { role: 'assistant' };
  if (reasoning !== '') message.reasoning_content = reasoning;
  message.content = content === '' && choice.toolCalls.length > 0 ? null : content;
  if (choice.toolCalls.length > 0) {
    message.tool_calls = choice.toolCalls.map((call) => ({
      type: 'function',
      function: { name: call.name, arguments: call.arguments },
      id: call.id,
    }));
  }
  return message;
}

export function chatBody(plan: Plan, timing: Timing): string {
  const first = plan.choices[0];
  if (first === undefined) return '{}';
  // n > 1: every choice is a task; their choices are merged into the first result, whose usage and timings stay.
  const choices = plan.choices.map((choice) => {
    const entry: Record<string, unknown> = { finish_reason: choice.finishReason, index: choice.index, message: chatMessage(choice) };
    if (plan.logprobs !== undefined) entry.logprobs = { content: choiceLogprobs(choice, plan.logprobs) };
    return entry;
  });
  return JSON.stringify({
    choices,
    created: plan.created,
    model: plan.model,
    system_fingerprint: BUILD_INFO,
    object: 'chat.completion',
    usage: usage(first, first.pieces.length),
    id: plan.id,
    timings: timings(first, first.pieces.length, timing),
  });
}

export function completionBody(plan: Plan, timing: Timing): string {
  const first = plan.choices[0];
  if (first === undefined) return '{}';
  // Several prompts: choices are merged into the first result, whose usage and timings stay.
  return JSON.stringify({
    choices: plan.choices.map((choice) => ({
      text: choiceText(choice).content,
      index: choice.index,
      logprobs: null,
      finish_reason: choice.finishReason,
    })),
    created: plan.created,
    model: plan.model,
    system_fingerprint: BUILD_INFO,
    object: 'text_completion',
    usage: usage(first, first.pieces.length),
    id: plan.id,
    timings: timings(first, first.pieces.length, timing),
  });
}
