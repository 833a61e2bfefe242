/**
 * A non-OpenAI surface passed through natively (a runtime serving
 * /v1/responses or /v1/messages itself): the answer is relayed with the
 * public model name put in, as on the OpenAI surfaces; only the few events
 * that carry usage, end the stream or report an error are parsed.
 */
import type { Target } from '../backends/registry.ts';
import { AttemptError } from '../backends/failure.ts';
import { gatewayError, type ErrorRenderer, type GatewayError } from '../errors.ts';
import type { AnswerCodec, ClientAnswer, StreamDialect } from '../proxy/codec.ts';
import { streamEventFailure } from '../proxy/upstream-error.ts';
import { rewriteModel } from '../wire/chunk-edit.ts';
import { spliceTopLevel, type SpliceEdit } from '../wire/json-splice.ts';
import { isErrorPayload, namedEventData } from '../wire/sse.ts';
import type { Usage } from '../wire/types.ts';
import { requireJsonObject } from './openai/codec.ts';
import type { UpstreamCall } from './surface.ts';

/** What differs between the native dialects (Responses, Anthropic Messages). */
export interface NativeDialectSpec {
  /** Usage of a complete JSON answer, in the chat shape. */
  answerUsage(answer: Record<string, unknown>): Usage | undefined;
  /** The event's `type` when it matters here: carries usage, ends the stream or reports an error (cheap test). */
  interesting(data: string): boolean;
  /** Reads an interesting event: usage seen so far, whether it ends the stream, an error it reports. */
  readEvent(event: Record<string, unknown>, usage: Usage | undefined): { usage?: Usage | undefined; end?: boolean; error?: GatewayError };
  /** Events that carry generated content (counted, about one token each). */
  isDelta(data: string): boolean;
  /** Sees the final answer of a stream (the terminal event), e.g. for the Responses store. */
  completed?(event: Record<string, unknown>): void;
  /** Sees a complete JSON answer. */
  answered?(answer: Record<string, unknown>): void;
}

interface NativeOptions {
  backendId: string;
  publicJson: string;
  promptParam: string;
  spec: NativeDialectSpec;
  errors: ErrorRenderer;
}

class NativeDialect implements StreamDialect {
  done = false;
  usage: Usage | undefined;
  chunks = 0;
  private readonly options: NativeOptions;

  constructor(options: NativeOptions) {
    this.options = options;
  }

  read(event: string): string | AttemptError {
    const split = namedEventData(event);
    if (split === undefined) return `${event}\n\n`; // comments and pings pass as they are
    const { head, data } = split;
    const { spec, backendId, promptParam, publicJson } = this.options;
    if (isErrorPayload(data)) return streamEventFailure(data, backendId, promptParam);
    if (data === '[DONE]') {
      this.done = true;
      return `${event}\n\n`;
    }
    if (spec.interesting(data)) {
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(data) as Record<string, unknown>;
      } catch {
        return new AttemptError('invalid-answer', gatewayError('SWY_ERR_UPSTREAM', { message: `Backend ${backendId} sent a stream event that is not JSON.` }));
      }
      const seen = spec.readEvent(parsed, this.usage);
      if (seen.error) return new AttemptError('upstream-status', seen.error, { upstreamStatus: seen.error.status });
      if (seen.usage) this.usage = seen.usage;
      if (seen.end) {
        this.done = true;
        spec.completed?.(parsed);
      }
    } else if (spec.isDelta(data)) this.chunks++;
    return `${head}data: ${rewriteModel(data, publicJson)}\n\n`;
  }

  fail(error: GatewayError): string {
    return this.options.errors.streamEvent(error);
  }
}

class NativeCodec implements AnswerCodec {
  private readonly options: NativeOptions;

  constructor(options: NativeOptions) {
    this.options = options;
  }

  json(text: string): ClientAnswer {
    requireJsonObject(text, this.options.backendId);
    let answer: Record<string, unknown>;
    try {
      answer = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new AttemptError('invalid-answer', gatewayError('SWY_ERR_UPSTREAM', { message: `Backend ${this.options.backendId} sent a body that is not JSON.` }));
    }
    const body = rewriteModel(text, this.options.publicJson);
    const answered = this.options.spec.answered;
    if (answered) answered(body === text ? answer : (JSON.parse(body) as Record<string, unknown>));
    return { body, usage: this.options.spec.answerUsage(answer) };
  }

  stream(): StreamDialect {
    return new NativeDialect(this.options);
  }
}

/** What a native call of a non-OpenAI surface needs. */
export interface NativeCallOptions {
  path: string;
  /** The request body text to send (the client's, or one the surface rewrote). */
  raw: string;
  clientModel: string;
  clientStream: boolean;
  promptParam: string;
  spec: NativeDialectSpec;
  errors: ErrorRenderer;
  /** Further top-level members to set (serialised JSON values). */
  edits?: SpliceEdit[];
}

/** The upstream call of a non-OpenAI surface the backend serves itself: the client's bytes, model spliced in. */
export function nativeCall(target: Target, options: NativeCallOptions): UpstreamCall {
  const edits: SpliceEdit[] = [...(options.edits ?? [])];
  if (target.model !== options.clientModel) edits.push({ key: 'model', value: target.modelJson, present: true });
  return {
    path: options.path,
    body: spliceTopLevel(options.raw, edits),
    stream: options.clientStream,
    assemble: undefined,
    codec: new NativeCodec({
      backendId: target.backend.id,
      publicJson: JSON.stringify(options.clientModel),
      promptParam: options.promptParam,
      spec: options.spec,
      errors: options.errors,
    }),
    translated: undefined,
  };
}
