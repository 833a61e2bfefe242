/** What differs between runtimes, behind one small interface per backend kind. */
export type HealthVerdict = 'up' | 'loading' | 'down';

/** Load figures read from a runtime's /metrics. */
export interface RuntimeLoad {
  queued: number | undefined;
  running: number | undefined;
  kvCacheUsage: number | undefined;
}

/** A served model as discovered from the runtime's /v1/models. */
export interface DiscoveredModel {
  id: string;
  contextLength: number | undefined;
}

/** The per-runtime facts the gateway needs (from each runtime's docs and server code; llama.cpp's are recorded in test/fixtures/llamacpp). */
export interface BackendKind {
  name: 'vllm' | 'llamacpp' | 'openai';
  /** Path probed for health. */
  healthPath: string;
  /** Reads a probe answer. Connection refused is handled by the caller as `down`. */
  interpretHealth(status: number, body: string): HealthVerdict;
  /** Stream from the runtime even when the client did not ask, so a client leaving cancels at once. */
  streamUpstreamByDefault: boolean;
  /**
   * The runtime closes a connection shortly after a streamed answer while still advertising keep-alive
   * (llama-server): streamed requests then go on a connection of their own (undici `reset`), or a request
   * sent on a pooled one as it closes fails before any answer.
   */
  closesAfterStream: boolean;
  /**
   * Usage can be read from the runtime's `timings` on the last chunk (llama.cpp), so a stream need not ask
   * for the extra usage chunk — which would move `timings` off the chunk the client sees.
   */
  usageFromTimings: boolean;
  /** Metric names to read from /metrics (empty: the kind publishes none we use). */
  metricNames: readonly string[];
  /** Turns the summed gauges into load figures. */
  readLoad(gauges: ReadonlyMap<string, number>): RuntimeLoad;
  /** Reads /v1/models entries (with the context length where the runtime reports it). */
  readModels(body: unknown): DiscoveredModel[];
}

/** Shared reader for the OpenAI list shape; `contextOf` picks the runtime's context field. */
export function readModelList(body: unknown, contextOf: (entry: Record<string, unknown>) => unknown): DiscoveredModel[] {
  const data = (body as { data?: unknown })?.data;
  if (!Array.isArray(data)) return [];
  return data
    .filter((entry): entry is Record<string, unknown> => typeof entry === 'object' && entry !== null && typeof (entry as { id?: unknown }).id === 'string')
    .map((entry) => {
      const context = Number(contextOf(entry));
      return { id: entry.id as string, contextLength: Number.isFinite(context) && context > 0 ? context : undefined };
    });
}
