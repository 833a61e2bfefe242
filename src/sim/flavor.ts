// The small set of things that differ between vLLM and llama.cpp: routes, error
// shapes, auth, context rules, response and chunk shapes, metrics. The engine
// (generation.ts) and server (simulator.ts) only ever talk to this interface.

import type { MetricsState } from './metrics-state.ts';
import type { ResolvedOptions } from './options.ts';
import type { RerankFields } from './request.ts';
import type { SimFlavor } from './types.ts';

export type FinishReason = 'stop' | 'length' | 'tool_calls';

/** One generated token: a word of reasoning or content, or a piece of a tool call. */
export type Piece =
  | { kind: 'content' | 'reasoning'; text: string }
  | { kind: 'tool-header'; toolIndex: number; id: string; name: string }
  | { kind: 'tool-args'; toolIndex: number; text: string };

export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

export interface PlanChoice {
  index: number;
  pieces: Piece[];
  finishReason: FinishReason;
  promptTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
  toolCalls: ToolCall[];
  /** The stop sequence that ended this choice, when one did. */
  stopSequence?: string;
}

/** The API a completion plan answers: OpenAI chat / completions, OpenAI Responses, Anthropic Messages. */
export type PlanKind = 'chat' | 'completions' | 'responses' | 'messages';

/** What a Responses or Messages plan carries beyond a chat plan. */
export interface SurfacePlan {
  /** The request body as sent, for answers that echo it (vLLM's Responses object). */
  request: Readonly<Record<string, unknown>>;
  /** Ids fixed for the whole answer: the response, its message item and its reasoning item. */
  responseId: string;
  messageId: string;
  reasoningId: string;
  /** The output budget the runtime settled on (vLLM echoes it as max_output_tokens). */
  maxOutputTokens: number;
  /** Stream state: next `sequence_number` (vLLM numbers every Responses event). */
  sequence: number;
  /** Stream state: index of the current output item or content block. */
  index: number;
  /** Stream state: the kind of item or block open now, if any. */
  open: 'reasoning' | 'text' | 'tool' | undefined;
  /** Stream state: whether a reasoning / a text item was opened at some point. */
  hadReasoning: boolean;
  hadText: boolean;
}

/** Everything a flavour needs to render one completion, decided before generation starts. */
export interface Plan {
  kind: PlanKind;
  id: string;
  created: number;
  /** Value of the `model` field in responses. */
  model: string;
  choices: PlanChoice[];
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  reasoningTokens: number;
  includeUsage: boolean;
  /** Alternatives per token when the request asked for logprobs (chat); undefined = none. */
  logprobs?: number;
  /** Set for the Responses and Messages surfaces. */
  surface?: SurfacePlan;
}

/** performance.now() milestones of one request, in ms. */
export interface Timing {
  arrivedAt: number;
  startedAt: number;
  firstTokenAt: number;
  endedAt: number;
}

/** A complete, non-streamed HTTP answer; contentType defaults to the flavour's JSON type, '' means none. */
export interface Reply {
  status: number;
  body: string;
  contentType?: string;
}

export type Route =
  | 'chat'
  | 'completions'
  | 'embeddings'
  | 'responses'
  | 'messages'
  | 'count-tokens'
  | 'rerank'
  | 'models'
  | 'health'
  | 'metrics'
  | 'extra'
  | 'not-found'
  | 'method-not-allowed';

export type ErrorKind = 'invalid' | 'context' | 'not_found' | 'server' | 'unavailable' | 'rate_limit' | 'not_supported';

/** The request fields that decide the completion length and whether it is allowed at all. */
export interface ContextVerdict {
  error?: Reply;
  completionTokens: number;
  finishReason: 'stop' | 'length';
}

/** A snapshot of the scheduler for /slots, /props and metrics. */
export interface SlotView {
  id: number;
  busy: boolean;
  taskId: number;
  promptTokens: number;
  cachedTokens: number;
  decoded: number;
  remaining: number;
  stream: boolean;
}

export interface SimView {
  options: ResolvedOptions;
  running: number;
  waiting: number;
  /** Tokens (prompt + generated so far) held by running requests, for KV-cache usage. */
  liveTokens: number;
  slots(): SlotView[];
}

/** Renders one surface's answers (non-streamed body, stream events) from a plan. */
export interface SurfaceRenderer {
  body(plan: Plan, timing: Timing): string;
  /** Stream text sent with the headers, before the first token (runtimes that answer at once). */
  start?(plan: Plan): string;
  tick(plan: Plan, choice: PlanChoice, pieceIndex: number, timing: Timing): string;
  end(plan: Plan, timing: Timing): string;
}

export interface RerankScore {
  index: number;
  score: number;
}

/** The Responses / Messages / rerank side of a flavour. */
export interface FlavorSurfaces {
  /** Ids and echo data of a new Responses / Messages answer; `maxOutputTokens` is the budget settled on. */
  newSurface(kind: 'responses' | 'messages', request: Readonly<Record<string, unknown>>, maxOutputTokens: number, requestIdHeader: string | undefined): SurfacePlan;
  responses: SurfaceRenderer;
  messages: SurfaceRenderer;
  /** An error of the chat machinery as the Messages surface answers it (vLLM: Anthropic's shape). */
  messagesError(reply: Reply): Reply;
  /** vLLM checks a Responses prompt its own way; undefined = the chat rule. */
  responsesContext?(promptTokens: number, maxTokens: number | undefined, options: ResolvedOptions): ContextVerdict;
  countTokens(surface: 'responses' | 'messages', tokens: number): Reply;
  /** `scores` come sorted best first and already cut to top_n. */
  renderRerank(fields: RerankFields, scores: readonly RerankScore[], promptTokens: number, id: string): string;
  /** A rerank score from a relevance in 0..1 (llama.cpp: a raw logit, vLLM: a probability). */
  rerankScore(relevance: number): number;
  rerankDisabled(): Reply;
}

export interface Flavor {
  readonly name: SimFlavor;
  readonly jsonType: string;
  readonly sseType: string;
  /** Static headers the runtime's HTTP server adds to every answer. */
  readonly baseHeaders: Readonly<Record<string, string>>;
  /** Extra headers on error answers (llama-server closes the connection after each). */
  readonly errorHeaders: Readonly<Record<string, string>>;
  /** vLLM answers a stream with headers at once; llama.cpp only once the first token exists. */
  readonly headersBeforeFirstToken: boolean;
  /** vLLM echoes X-Request-Id; llama.cpp does not. */
  readonly echoRequestId: boolean;
  /** Prefix caching granularity (vLLM caches whole 16-token blocks). */
  readonly cacheBlockTokens: number;
  /**
   * llama-server closes the connection a few ms after a streamed answer unless the next request is already
   * there (while still sending Keep-Alive): a keep-alive race every client of it must survive.
   */
  readonly closesAfterStream: boolean;
  /** While loading: vLLM is not listening yet (connections reset), llama.cpp answers 503. */
  readonly loadingResetsConnections: boolean;
  /** llama.cpp ignores a wrongly typed scalar (logs, uses the default); vLLM's pydantic rejects it. */
  readonly lenientScalars: boolean;

  route(method: string, path: string): Route;
  requiresAuth(path: string): boolean;
  /** Accepts the key from the request headers the way the runtime does. */
  authorized(headers: Record<string, string | string[] | undefined>, apiKey: string): boolean;

  error(kind: ErrorKind, message: string, param?: string | null): Reply;
  unauthorized(): Reply;
  notFound(): Reply;
  methodNotAllowed(): Reply;
  loading(): Reply;
  /** `parseError` is the message of JSON.parse's SyntaxError. */
  malformedJson(text: string, parseError: string): Reply;
  missingField(field: string, endpoint: Route, body: unknown): Reply;
  invalidField(field: string, detail: string, input: unknown): Reply;
  injectedFailure(status: 500 | 429): Reply;

  /** vLLM rejects an unknown model with 404; llama.cpp ignores the field. */
  checkModel(requested: string | undefined, options: ResolvedOptions): Reply | undefined;
  /** Normalises max_tokens: undefined means "until the model stops". */
  maxTokens(value: number | undefined): number | undefined | Reply;
  checkContext(promptTokens: number, maxTokens: number | undefined, options: ResolvedOptions): ContextVerdict;
  checkEmbeddingContext(promptTokens: number, options: ResolvedOptions): Reply | undefined;
  includeUsage(streamOptions: unknown): boolean;
  toolFinishReason(named: boolean): FinishReason;
  responseModel(requested: string | undefined, options: ResolvedOptions): string;
  completionId(kind: 'chat' | 'completions' | 'embeddings', requestIdHeader: string | undefined): string;
  toolCallId(): string;

  renderBody(plan: Plan, timing: Timing): string;
  /** SSE text for one token; the first piece of a choice carries the role chunk, the last the finish. */
  renderTick(plan: Plan, choice: PlanChoice, pieceIndex: number, timing: Timing): string;
  /** SSE text after the last token: usage chunk when asked for, then [DONE]. */
  renderEnd(plan: Plan, timing: Timing): string;
  /** Embeddings arrive already encoded: float arrays, or base64 strings. */
  renderEmbeddings(requestedModel: string | undefined, id: string, embeddings: readonly (readonly number[] | string)[], promptTokens: number): string;
  renderModels(options: ResolvedOptions): string;
  health(view: SimView): Reply;
  /** Runtime-specific GET endpoints (/slots, /props, /ping, /version...). */
  extra(path: string, query: string, view: SimView): Reply | undefined;
  renderMetrics(state: MetricsState, view: SimView): Reply;
  /** vLLM's per-response load report (`endpoint-load-metrics` header) for a requested format. */
  loadReport(format: string, view: SimView): string | undefined;
  /** Responses, Messages and rerank; a flavour without them answers those paths 404. */
  readonly surfaces?: FlavorSurfaces;
  /**
   * A request error the runtime raises after a stream's headers went out (SGLang's context checks), as the
   * streaming client gets it; undefined (or no hook): the error is a plain answer with its status.
   */
  errorInStream?(reply: Reply): Reply | undefined;
}
