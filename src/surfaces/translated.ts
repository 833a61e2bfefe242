/**
 * A surface translated onto chat completions: the upstream call is a chat
 * request built from the surface's body, and the chat answer is translated
 * back. Unlike the identity relay, this path parses every chunk (the
 * translators need the deltas as objects); usage is read from the chat
 * answer the same way as for a chat request, so the translated request is
 * metered exactly like the chat request it maps to.
 */
import type { Target } from '../backends/registry.ts';
import { AttemptError } from '../backends/failure.ts';
import { gatewayError, GatewayError } from '../errors.ts';
import type { AnswerCodec, ClientAnswer, StreamDialect } from '../proxy/codec.ts';
import { streamEventFailure } from '../proxy/upstream-error.ts';
import { extractUsage, usageFromTimings } from '../wire/chunk-edit.ts';
import { dataOf, isErrorPayload } from '../wire/sse.ts';
import type { Usage } from '../wire/types.ts';
import { requireJsonObject } from './openai/codec.ts';
import type { UpstreamCall } from './surface.ts';

/** Chat chunks in, the surface's SSE text out (the translators in responses/ and anthropic/). */
export interface StreamTranslator {
  push(chunk: Record<string, unknown>): string;
  /** The upstream stream completed. */
  finish(): string;
  /** The stream failed after it began. */
  fail(error: { message: string; code: string | null; type?: string }): string;
}

/** A surface's translation of one request's answer. */
export interface ChatTranslation {
  /** `<surface>->chat`, for x-switchyard-translated. */
  name: string;
  /** A chat completion as the surface's answer. */
  answer(chat: Record<string, unknown>): Record<string, unknown>;
  /** A stream translator (one per attempt: nothing is sent before the first event). */
  stream(): StreamTranslator;
  /** Sees the client's answer once complete (the Responses store keeps it). */
  completed?(answer: Record<string, unknown>): void;
}

interface TranslatedOptions {
  backendId: string;
  promptParam: string;
  translation: ChatTranslation;
}

function notJson(backendId: string): AttemptError {
  return new AttemptError('invalid-answer', gatewayError('SWY_ERR_UPSTREAM', { message: `Backend ${backendId} sent a stream event that is not JSON.` }));
}

class TranslatedDialect implements StreamDialect {
  done = false;
  usage: Usage | undefined;
  chunks = 0;
  private readonly options: TranslatedOptions;
  private readonly translator: StreamTranslator;

  constructor(options: TranslatedOptions) {
    this.options = options;
    this.translator = options.translation.stream();
  }

  read(event: string): string | AttemptError {
    const data = dataOf(event);
    if (data === undefined) return event.startsWith(':') ? `${event}\n\n` : ''; // keep-alive comments pass
    if (isErrorPayload(data)) return streamEventFailure(data, this.options.backendId, this.options.promptParam);
    if (data === '[DONE]') {
      this.done = true;
      return this.translator.finish();
    }
    let chunk: Record<string, unknown>;
    try {
      chunk = JSON.parse(data) as Record<string, unknown>;
    } catch {
      return notJson(this.options.backendId);
    }
    const usage = extractUsage(data) ?? (this.usage === undefined ? usageFromTimings(data) : undefined);
    if (usage) this.usage = usage;
    if (Array.isArray(chunk.choices) && chunk.choices.length > 0) this.chunks++;
    return this.translator.push(chunk);
  }

  fail(error: GatewayError): string {
    return this.translator.fail({ message: error.message, code: error.code, type: error.type });
  }
}

class TranslatedCodec implements AnswerCodec {
  private readonly options: TranslatedOptions;

  constructor(options: TranslatedOptions) {
    this.options = options;
  }

  json(text: string): ClientAnswer {
    requireJsonObject(text, this.options.backendId);
    let chat: Record<string, unknown>;
    try {
      chat = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new AttemptError('invalid-answer', gatewayError('SWY_ERR_UPSTREAM', { message: `Backend ${this.options.backendId} sent a body that is not JSON.` }));
    }
    const answer = this.options.translation.answer(chat);
    this.options.translation.completed?.(answer);
    return { body: JSON.stringify(answer), usage: extractUsage(text) ?? usageFromTimings(text) };
  }

  stream(): StreamDialect {
    return new TranslatedDialect(this.options);
  }
}

/**
 * The upstream call of a translated request: `chat` (the chat body the surface's request maps to) with the
 * target's model, streamed when the client streams or the backend prefers to stream (then assembled back).
 */
export function translatedCall(chat: Record<string, unknown>, target: Target, clientStream: boolean, options: TranslatedOptions): UpstreamCall {
  const upstreamStream = clientStream || target.backend.streamUpstream;
  const body: Record<string, unknown> = { ...chat, model: target.model };
  if (upstreamStream) {
    body.stream = true;
    // Usage arrives as the last chunk only when asked for; metering and the translated answer need it.
    body.stream_options = { include_usage: true };
  } else {
    delete body.stream;
    delete body.stream_options;
  }
  return {
    path: '/v1/chat/completions',
    body: JSON.stringify(body),
    stream: upstreamStream,
    assemble: upstreamStream && !clientStream ? 'chat' : undefined,
    codec: new TranslatedCodec(options),
    translated: options.translation.name,
  };
}

/**
 * The chat view of a translated surface's request: the chat request it maps to, or, when it has a part the
 * translation lacks, a rough view (its text as one message, its sampling and max tokens) and the reason, so
 * only a translated call refuses it (a runtime serving the surface itself may well take it).
 */
export function chatView(
  json: Record<string, unknown>,
  translate: () => Record<string, unknown>,
  rough: { text: unknown; maxTokens: unknown },
): { accounting: Record<string, unknown>; untranslatable: GatewayError | undefined } {
  try {
    return { accounting: translate(), untranslatable: undefined };
  } catch (error) {
    if (!(error instanceof GatewayError) || error.status !== 400) throw error;
    const accounting: Record<string, unknown> = { model: json.model, messages: [{ role: 'user', content: JSON.stringify(rough.text ?? '') }] };
    if (typeof rough.maxTokens === 'number') accounting.max_tokens = rough.maxTokens;
    if (json.temperature !== undefined) accounting.temperature = json.temperature;
    if (json.seed !== undefined) accounting.seed = json.seed;
    return { accounting, untranslatable: error };
  }
}
