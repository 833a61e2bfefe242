/**
 * The surface seam: one API surface (OpenAI chat, completions, embeddings,
 * ...) is one object that the generic pipeline (pipeline.ts) drives. A
 * surface declares its routes, reads a body into the common view the
 * pipeline needs, and plans the upstream call for a target. Auth, limits,
 * budgets, cache, single flight, affinity, admission, failover, metrics and
 * logging then work from the view alone, with no per-surface branch.
 *
 * Modelled on Envoy AI Gateway's endpointspec (`ParseBody`, `GetTranslator`)
 * and the Vercel AI SDK's folder per surface: each surface lives in its own
 * folder under src/surfaces/ and is listed once in surfaces/index.ts.
 */
import type { FastifyInstance } from 'fastify';
import type { Target } from '../backends/registry.ts';
import type { CacheEntry } from '../cache/entry.ts';
import type { ErrorRenderer, GatewayError } from '../errors.ts';
import type { AnswerCapture, AnswerCodec } from '../proxy/codec.ts';
import type { Usage } from '../wire/types.ts';
import type { SurfaceName } from './names.ts';

/** One route a surface answers. */
export interface SurfaceRoute {
  method: 'POST';
  url: string;
}

/** What the pipeline reads from a request, whatever its surface. */
export interface RequestView {
  /** The model name exactly as the client sent it (public name or alias). */
  model: string;
  /** The client asked for an SSE stream. */
  stream: boolean;
  /** A streaming client asked for usage at the end of the stream (OpenAI `stream_options.include_usage`). */
  streamUsage: boolean;
  /**
   * The request in OpenAI shape that estimates, affinity, cacheability, token limits, budgets and cost read:
   * the body itself on the OpenAI surfaces, the chat request it maps to on a translated surface. So a request
   * is counted the same whichever surface it came in on.
   */
  accounting: Readonly<Record<string, unknown>>;
  /** The request field holding the prompt: the `param` of a context-length error. */
  promptParam: string;
  /**
   * Why the request cannot be mapped onto chat (a translated surface's request with a part the translation
   * lacks): it is refused only where it would be translated; a backend serving the surface natively gets it
   * as it is, and `accounting` is then a rough chat view of its text.
   */
  untranslatable?: GatewayError | undefined;
}

/** The request as the pipeline hands it to `plan`. */
export interface PlannedRequest {
  view: RequestView;
  /** The client's body text (after the gateway's own edits, e.g. a key's max-tokens cap). */
  raw: string;
  json: Record<string, unknown>;
  /** What the surface's `prepare` read for this request (undefined for surfaces without one). */
  prepared: unknown;
  /** Sees the answer on its way to the client (the response cache), when it is to be stored. */
  capture: AnswerCapture | undefined;
  /** The request id (translations derive response ids from it). */
  requestId: string;
}

/** How a backend serves a surface: on the surface's own path, or translated onto chat completions. */
export type ServeMode = 'native' | 'translate';

/** One upstream call for one target. */
export interface UpstreamCall {
  /** Path on the backend, after its base path (e.g. `/v1/chat/completions`). */
  path: string;
  body: string;
  /** The upstream is asked for an SSE stream. */
  stream: boolean;
  /** The stream assembled into a JSON answer for a non-streaming client (OpenAI chunks of this kind). */
  assemble: 'chat' | 'completion' | undefined;
  /** Reads the answer into the client's shape. */
  codec: AnswerCodec;
  /** `<surface>-><upstream surface>` when the call is translated (header x-switchyard-translated). */
  translated: string | undefined;
}

/** An answer the surface gives itself for a target instead of calling it (e.g. a token count estimated locally). */
export interface LocalAnswer {
  local: { body: string; usage: Usage | undefined };
  /** What stood in for the upstream call, for x-switchyard-translated (e.g. `count_tokens->estimate`). */
  translated: string;
}

/** A stored answer served to a request (a cache hit): a JSON body, or the SSE text of a stream. */
export type StoredAnswer = { json: string } | { sse: string };

/** Collects the answer of one request for the cache. */
export interface AnswerRecorder extends AnswerCapture {
  /** The entry to store once the request is over; undefined when the answer is incomplete or too large. */
  entry(usage: Usage | undefined): CacheEntry | undefined;
}

/** How the response cache treats a surface's requests. */
export interface SurfaceCache {
  /** Entry kind and cache-key component for this request. */
  kind(view: RequestView): string;
  /** Answers are sampled, so only deterministic requests are cacheable (see cache/policy.ts). */
  sampled: boolean;
  /** The stored answer as this request wants it. */
  serve(entry: CacheEntry, view: RequestView): StoredAnswer;
  /** Collects the answer for storing (`maxBytes`: cache.maxEntryBytes). */
  recorder(view: RequestView, maxBytes: number): AnswerRecorder;
}

/** An API surface. */
export interface Surface {
  /** Its name: the `endpoint` label of the request metrics and the log field (one value per surface). */
  readonly name: string;
  /**
   * The surface whose support it shares (config `backends[].surfaces` key, kinds' native lists): `messages` for
   * count_tokens. A 404 is still learnt per `name`. Absent: `name` is a SurfaceName and is its own family.
   */
  readonly family?: SurfaceName;
  readonly routes: readonly SurfaceRoute[];
  /**
   * Reads what the request needs beyond its body before it can be parsed (the earlier turns of a Responses
   * `previous_response_id`); its result reaches `parse` and `plan`. Absent: nothing to read.
   */
  prepare?(json: Record<string, unknown>, context: PrepareContext): unknown;
  /** Validates what the gateway needs and reads the common view; throws a 400 GatewayError naming the field. */
  parse(json: Record<string, unknown>, prepared: unknown): RequestView;
  /**
   * The body member that caps output tokens at `cap` (an API key's maxTokensCap), or undefined when the
   * request is within it or the surface produces no tokens.
   */
  capOutput(json: Record<string, unknown>, cap: number | undefined): { field: string; value: number } | undefined;
  /** The surface can be translated onto chat completions for backends that do not serve it natively. */
  readonly translates: boolean;
  /** Plans the upstream call for `target`, native or translated (or answers without one). */
  plan(request: PlannedRequest, target: Target, mode: ServeMode): UpstreamCall | LocalAnswer;
  /** How the response cache treats the surface's requests; undefined: never cached. */
  readonly cache: SurfaceCache | undefined;
  /** How the surface shows errors, as a response and inside a stream. */
  readonly errors: ErrorRenderer;
  /** Registers the surface's routes that are not inference (e.g. `GET /v1/responses/{id}`). */
  register?(app: FastifyInstance): void;
}

/** What `prepare` may use. */
export interface PrepareContext {
  /** The caller's tenant (`default` without API keys). */
  tenant: string;
}
