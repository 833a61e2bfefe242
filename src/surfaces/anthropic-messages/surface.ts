/**
 * Anthropic Messages: `POST /v1/messages` (and `?beta=true`, as Claude Code
 * sends it; `anthropic-version` and `anthropic-beta` headers are accepted and
 * not needed) and `POST /v1/messages/count_tokens`. Passed through to
 * runtimes that serve it (llama.cpp, vLLM), translated onto chat completions
 * for the others (../anthropic/translate.ts). Every error on these routes —
 * the gateway's own refusals (API key, limits, unknown model) as much as the
 * backend's — is in Anthropic's shape. API keys come from `x-api-key` (what
 * Anthropic clients send) or `Authorization: Bearer`.
 */
import { randomBytes } from 'node:crypto';
import { gatewayError, openaiErrorRenderer, type ErrorRenderer, type GatewayError } from '../../errors.ts';
import { estimatePromptTokens } from '../../proxy/estimate.ts';
import {
  anthropicError,
  anthropicErrorType,
  ChatStreamToMessages,
  chatCompletionToMessage,
  mergeMessagesUsage,
  messagesRequestToChat,
  messagesUsage,
} from '../anthropic/translate.ts';
import { nativeCall, type NativeDialectSpec } from '../native.ts';
import { invalid, requireModel, streamFlag } from '../openai/validate.ts';
import { ownShapeCache } from '../own-shape-cache.ts';
import type { Surface } from '../surface.ts';
import { chatView, translatedCall } from '../translated.ts';

/** `{"type":"error","error":{"type","message"}}` with the status kept, as a response and as a stream event. */
export const anthropicErrors: ErrorRenderer = {
  response(error) {
    const rendered = anthropicError({ status: error.status, type: error.type, message: error.message, code: error.code });
    return { status: rendered.status, body: rendered.body, headers: openaiErrorRenderer.response(error).headers };
  },
  streamEvent: (error) =>
    `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: anthropicErrorType(error.status, error.type, error.code), message: error.message } })}\n\n`,
};

const interestingEvent = /"type":\s?"(message_start|message_delta|message_stop|error)"/;

/** An `error` event of a native Messages stream, as the gateway's error. */
function streamError(event: Record<string, unknown>, backendId: string): GatewayError {
  const error = (event.error ?? {}) as { type?: unknown; message?: unknown };
  const message = typeof error.message === 'string' ? error.message : 'The backend reported an error in the stream.';
  if (error.type === 'overloaded_error') return gatewayError('SWY_ERR_UPSTREAM', { origin: 'upstream', status: 503, message: `Backend ${backendId}: ${message}` });
  return gatewayError('SWY_ERR_UPSTREAM', { origin: 'upstream', message: `Backend ${backendId}: ${message}` });
}

function messagesSpec(backendId: string): NativeDialectSpec {
  return {
    answerUsage: (answer) => messagesUsage(answer),
    interesting: (data) => interestingEvent.test(data),
    readEvent(event, usage) {
      if (event.type === 'error') return { error: streamError(event, backendId) };
      if (event.type === 'message_stop') return { end: true };
      return { usage: mergeMessagesUsage(usage, event) };
    },
    isDelta: (data) => data.includes('"content_block_delta"'),
  };
}

export const anthropicMessages: Surface = {
  name: 'messages',
  routes: [{ method: 'POST', url: '/v1/messages' }],

  parse(json) {
    const model = requireModel(json);
    const stream = streamFlag(json);
    if (!Array.isArray(json.messages) || json.messages.length === 0) throw invalid('messages', 'messages is required: a non-empty list of user and assistant turns.');
    // The chat request it maps to: what estimates, limits, cache keys and cost read, and the translated body.
    const { accounting, untranslatable } = chatView(json, () => messagesRequestToChat(json), { text: [json.system, json.messages], maxTokens: json.max_tokens });
    return { model, stream, streamUsage: false, accounting, promptParam: 'messages', untranslatable };
  },

  capOutput(json, cap) {
    if (cap === undefined) return undefined;
    const requested = json.max_tokens;
    if (typeof requested === 'number' && requested <= cap) return undefined;
    return { field: 'max_tokens', value: cap };
  },

  translates: true,

  plan(request, target, mode) {
    const { view } = request;
    const backendId = target.backend.id;
    if (mode === 'translate') {
      if (view.untranslatable) throw view.untranslatable;
      const context = { id: `msg_${randomBytes(12).toString('hex')}`, model: view.model };
      return translatedCall(view.accounting as Record<string, unknown>, target, view.stream, {
        backendId,
        promptParam: 'messages',
        translation: {
          name: 'messages->chat',
          answer: (chat) => chatCompletionToMessage(chat, context),
          stream: () => new ChatStreamToMessages(context),
        },
      });
    }
    return nativeCall(target, {
      path: '/v1/messages',
      raw: request.raw,
      clientModel: view.model,
      clientStream: view.stream,
      promptParam: 'messages',
      spec: messagesSpec(backendId),
      errors: anthropicErrors,
    });
  },

  cache: ownShapeCache('messages'),
  errors: anthropicErrors,
};

/**
 * `POST /v1/messages/count_tokens`: passed through where the backend serves Messages natively (llama.cpp and
 * vLLM count with the model's own tokenizer and chat template); elsewhere the gateway answers with its estimate
 * of the chat request the body maps to (about four characters a token, see proxy/estimate.ts), saying so in
 * x-switchyard-translated. Not a generation: it reserves and charges no tokens, and is not cached.
 */
export const anthropicCountTokens: Surface = {
  name: 'count_tokens',
  family: 'messages',
  routes: [{ method: 'POST', url: '/v1/messages/count_tokens' }],

  parse(json) {
    const model = requireModel(json);
    // Checked as a Messages request (count_tokens takes no max_tokens: a placeholder satisfies the check); one
    // the translation cannot map is refused only where the count would be estimated.
    const { untranslatable } = chatView(json, () => messagesRequestToChat({ max_tokens: 1, ...json, stream: false }), { text: '', maxTokens: 0 });
    return { model, stream: false, streamUsage: false, accounting: { model, input: [] }, promptParam: 'messages', untranslatable };
  },

  capOutput: () => undefined,
  translates: true,

  plan(request, target, mode) {
    const { view, json } = request;
    if (mode === 'translate') {
      if (view.untranslatable) throw view.untranslatable;
      const chat = messagesRequestToChat({ max_tokens: 1, ...json, stream: false });
      return { local: { body: JSON.stringify({ input_tokens: estimatePromptTokens(chat) }), usage: undefined }, translated: 'count_tokens->estimate' };
    }
    return nativeCall(target, {
      path: '/v1/messages/count_tokens',
      raw: request.raw,
      clientModel: view.model,
      clientStream: false,
      promptParam: 'messages',
      spec: { answerUsage: () => undefined, interesting: () => false, readEvent: () => ({}), isDelta: () => false },
      errors: anthropicErrors,
    });
  },

  cache: undefined,
  errors: anthropicErrors,
};
