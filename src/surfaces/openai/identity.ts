/**
 * The OpenAI surfaces (chat completions, completions, embeddings) are the
 * identity surfaces: the runtimes speak them natively, so the upstream body
 * is the client's bytes with `model` (and, for streams, `stream_options`)
 * spliced in, and the answer is relayed with only the model name edited.
 */
import type { Target } from '../../backends/registry.ts';
import { cappedMaxTokens } from '../../limits/authenticate.ts';
import { spliceTopLevel, type SpliceEdit } from '../../wire/json-splice.ts';
import type { Endpoint } from '../../wire/types.ts';
import type { PlannedRequest, Surface, SurfaceRoute, UpstreamCall } from '../surface.ts';
import { promptParams, validateBody } from './validate.ts';

/** The upstream body: the client's bytes with `model` (and stream options where needed) replaced. */
export function upstreamBody(request: PlannedRequest, target: Target, upstreamStream: boolean): string {
  const edits: SpliceEdit[] = [];
  const json = request.json;
  if (target.model !== request.view.model) edits.push({ key: 'model', value: target.modelJson, present: true });
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
  return spliceTopLevel(request.raw, edits);
}

/** What tells one identity surface from another. */
export interface IdentitySpec {
  name: string;
  endpoint: Endpoint;
  path: string;
  routes: readonly SurfaceRoute[];
}

/** Builds an identity surface. */
export function identitySurface(spec: IdentitySpec): Surface {
  const { endpoint, path } = spec;
  const promptParam = promptParams[endpoint];
  const streams = endpoint !== 'embedding';
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
    assembles: streams,
    plan(request, target, upstreamStream): UpstreamCall {
      return { path, body: upstreamBody(request, target, upstreamStream), wire: endpoint };
    },
    cache: { kind: endpoint, sampled: streams },
  };
}
