/**
 * The OpenAI surfaces (chat completions, completions, embeddings) are the
 * identity surfaces: every runtime speaks them natively, so the upstream body
 * is the client's bytes with `model` (and, for streams, `stream_options`)
 * spliced in, and the answer is relayed with only the model name edited.
 */
import type { Target } from '../../backends/registry.ts';
import { entryFromResponse, type CacheEntry } from '../../cache/entry.ts';
import { StreamCacheRecorder } from '../../cache/recorder.ts';
import { openaiErrorRenderer } from '../../errors.ts';
import { cappedMaxTokens } from '../../limits/authenticate.ts';
import { rewriteModel } from '../../wire/chunk-edit.ts';
import { spliceTopLevel, type SpliceEdit } from '../../wire/json-splice.ts';
import { replayAsSse } from '../../wire/replay.ts';
import type { Endpoint, Usage } from '../../wire/types.ts';
import type { SurfaceName } from '../names.ts';
import type { AnswerRecorder, PlannedRequest, RequestView, Surface, SurfaceCache, SurfaceRoute, UpstreamCall } from '../surface.ts';
import { IdentityCodec } from './codec.ts';
import { promptParams, validateBody, type OpenAIEndpoint } from './validate.ts';

/**
 * The upstream body of an OpenAI request: the client's bytes with `model` (and stream options where needed)
 * replaced. `json` is the body `raw` holds.
 */
export function upstreamBody(raw: string, json: Record<string, unknown>, clientModel: string, target: Target, upstreamStream: boolean): string {
  const edits: SpliceEdit[] = [];
  if (target.model !== clientModel) edits.push({ key: 'model', value: target.modelJson, present: true });
  // A streaming client that did not ask for usage gets the stream as the runtime sends it when usage can be
  // read from the runtime's own timings; otherwise usage is asked for and the extra chunk dropped in the relay.
  const usageFromTimings = json.stream === true && target.backend.kind.usageFromTimings;
  if (upstreamStream && !usageFromTimings) {
    if (json.stream !== true) edits.push({ key: 'stream', value: 'true', present: json.stream !== undefined });
    const options = json.stream_options;
    if (!(options && typeof options === 'object' && (options as { include_usage?: unknown }).include_usage === true)) {
      const merged = options && typeof options === 'object' && !Array.isArray(options) ? { ...options, include_usage: true } : { include_usage: true };
      edits.push({ key: 'stream_options', value: JSON.stringify(merged), present: options !== undefined });
    }
  }
  return spliceTopLevel(raw, edits);
}

/** Records an OpenAI answer for the cache: the JSON as sent, or a stream assembled back into that JSON. */
class IdentityRecorder implements AnswerRecorder {
  private answer: CacheEntry | undefined;
  private stream: StreamCacheRecorder | undefined;
  private readonly kind: Endpoint;
  private readonly model: string;
  private readonly maxBytes: number;

  constructor(kind: Endpoint, model: string, maxBytes: number) {
    this.kind = kind;
    this.model = model;
    this.maxBytes = maxBytes;
  }

  json(body: string, usage: Usage | undefined): void {
    this.answer = entryFromResponse(this.kind, body, usage);
  }

  streamData(data: string): void {
    this.stream ??= new StreamCacheRecorder(this.kind === 'chat' ? 'chat' : 'completion', this.model, this.maxBytes);
    this.stream.add(data);
  }

  entry(usage: Usage | undefined): CacheEntry | undefined {
    return this.answer ?? this.stream?.entry(usage);
  }
}

/** The cache of an OpenAI-convention surface: one entry serves JSON and (for chat and completions) streams. */
export function identityCache(kind: Endpoint, sampled: boolean): SurfaceCache {
  return {
    kind: () => kind,
    sampled,
    serve(entry, view: RequestView) {
      if (view.stream) return { sse: replayAsSse(entry, { includeUsage: view.streamUsage, publicModel: view.model }) };
      return { json: rewriteModel(entry.body, JSON.stringify(view.model)) };
    },
    recorder: (view, maxBytes) => new IdentityRecorder(kind, view.model, maxBytes),
  };
}

/** What tells one identity surface from another. */
export interface IdentitySpec {
  name: SurfaceName;
  endpoint: OpenAIEndpoint;
  path: string;
  routes: readonly SurfaceRoute[];
}

/** Builds an identity surface. */
export function identitySurface(spec: IdentitySpec): Surface {
  const { endpoint, path } = spec;
  const promptParam = promptParams[endpoint];
  const streams = endpoint !== 'embedding';
  const assemble = endpoint === 'embedding' ? undefined : endpoint;
  return {
    name: spec.name,
    routes: spec.routes,
    parse(json) {
      const model = validateBody(endpoint, json);
      const stream = streams && json.stream === true;
      return {
        model,
        stream,
        streamUsage: stream && (json.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true,
        accounting: json,
        promptParam,
      };
    },
    capOutput: (json, cap) => (streams ? cappedMaxTokens(json, cap) : undefined),
    translates: false,
    plan(request: PlannedRequest, target: Target): UpstreamCall {
      const view = request.view;
      // llama.cpp notices a departed non-streaming client late: stream from it and assemble the answer.
      const upstreamStream = view.stream || (streams && target.backend.streamUpstream);
      return {
        path,
        body: upstreamBody(request.raw, request.json, view.model, target, upstreamStream),
        stream: upstreamStream,
        assemble: upstreamStream && !view.stream ? assemble : undefined,
        codec: new IdentityCodec({
          backendId: target.backend.id,
          publicJson: JSON.stringify(view.model),
          promptParam,
          clientWantsUsage: view.streamUsage,
          capture: request.capture,
        }),
        translated: undefined,
      };
    },
    cache: identityCache(endpoint, streams),
    errors: openaiErrorRenderer,
  };
}
