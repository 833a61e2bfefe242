// The small set of things that differ between vLLM and llama.cpp: routes, error
// shapes, auth, context rules, response and chunk shapes, metrics. The engine
// (generation.ts) and server (simulator.ts) only ever talk to this interface.

import type { MetricsState } from './metrics-state.ts';
import type { ResolvedOptions } from './options.ts';
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
}

/** Everything a flavour needs to render one completion, decided before generation starts. */
export interface Plan {
  kind: 'chat' | 'completions';
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
  renderEmbeddings(
    requestedModel: string | undefined,
    id: string,
    embeddings: readonly (readonly number[] | string)[],
    promptTokens: number,
  ): string;
  renderModels(options: ResolvedOptions): string;
  health(view: SimView): Reply;
  /** Runtime-specific GET endpoints (/slots, /props, /ping, /version...). */
  extra(path: string, query: string, view: SimView): Reply | undefined;
  renderMetrics(state: MetricsState, view: SimView): Reply;
  /** vLLM's per-response load report (`endpoint-load-metrics` header) for a requested format. */
  loadReport(format: string, view: SimView): string | undefined;
}
