/**
 * What differs between runtimes, behind one small interface per backend kind.
 * Core code (health probes, scrapes, discovery, the proxy) asks the kind and
 * never a kind's name; each runtime's file opens with the list of its quirks.
 * Adding a runtime is one file here plus its entry in index.ts.
 */
import type { SurfaceName } from '../../surfaces/names.ts';
import type { SpliceEdit } from '../../wire/json-splice.ts';

/** `cache_salt` set to the tenant's salt, replacing any the client sent (vLLM, SGLang). */
export function saltEdits(salt: string): SpliceEdit[] {
  return [{ key: 'cache_salt', value: JSON.stringify(salt) }];
}

/** llama.cpp: the prompt is computed again rather than taken from the slot's cache. */
export const noPromptCache: SpliceEdit[] = [{ key: 'cache_prompt', value: 'false' }];

export type HealthVerdict = 'up' | 'loading' | 'down';

/** Load figures read from a runtime's /metrics (or from a per-response load report). */
export interface RuntimeLoad {
  queued: number | undefined;
  running: number | undefined;
  kvCacheUsage: number | undefined;
}

/** A served model as discovered from the runtime (with its context window where it says). */
export interface DiscoveredModel {
  id: string;
  contextLength: number | undefined;
}

/** What one discovery round learned; absent fields mean "the runtime did not say". */
export interface Discovery {
  /** Undefined when the model list could not be read (the previous list is kept). */
  models: DiscoveredModel[] | undefined;
  /** Parallel slots the runtime reports (llama.cpp). */
  slots?: number;
}

/** A GET against the backend, bounded in time by the caller; `withKey` sends the backend's API key. */
export type KindGet = (path: string, withKey: boolean) => Promise<{ status: number; body: string }>;

/** How the runtime's health endpoint is probed and read. */
export interface HealthProbe {
  path: string;
  /** Send the backend's API key with the probe (the path is guarded by it). */
  sendsKey: boolean;
  /** Reads a probe answer. Connection refused and timeouts are handled by the caller as `down`. */
  interpret(status: number, body: string): HealthVerdict;
}

/** The load gauges a runtime publishes on /metrics. */
export interface MetricsReader {
  /** Exact metric names to read (samples are summed across label sets). */
  names: readonly string[];
  /** Turns the summed gauges into load figures. */
  read(gauges: ReadonlyMap<string, number>): RuntimeLoad;
  /** A hint for a scrape answered with this status (how the runtime enables /metrics). */
  failureHint?(status: number): string | undefined;
  /**
   * Where load is read instead when /metrics answers `status` (a runtime started without metrics): another
   * endpoint and its reader (undefined: nothing usable in the body).
   */
  fallback?: { when(status: number): boolean; path: string; read(body: string): RuntimeLoad | undefined };
}

/** A per-response load report the runtime can attach to every answer (vLLM's `endpoint-load-metrics`). */
export interface LoadReport {
  /** Request headers asking for the report. */
  requestHeaders: Readonly<Record<string, string>>;
  /** Response header carrying it (lower case). */
  responseHeader: string;
  /** Reads the header; undefined when it holds nothing usable. */
  read(value: string): { queued?: number; kvCacheUsage?: number } | undefined;
}

/** The per-runtime facts the gateway needs. */
export interface BackendKind {
  /** The config `kind` value. */
  readonly name: string;
  readonly health: HealthProbe;
  /** Stream from the runtime even when the client did not ask, so a client leaving cancels at once. */
  readonly streamUpstreamByDefault: boolean;
  /**
   * The runtime closes a connection shortly after a streamed answer while still advertising keep-alive
   * (llama-server): streamed requests then go on a connection of their own (undici `reset`), or a request
   * sent on a pooled one as it closes fails before any answer.
   */
  readonly closesAfterStream: boolean;
  /**
   * Usage can be read from the runtime's `timings` on the last chunk (llama.cpp), so a stream need not ask
   * for the extra usage chunk — which would move `timings` off the chunk the client sees.
   */
  readonly usageFromTimings: boolean;
  /**
   * The runtime refuses a request whose prompt + max_tokens exceeds the context window (vLLM, SGLang,
   * OpenAI). When false (llama.cpp) only the prompt must fit: generation stops when the window is full.
   */
  readonly contextCountsMaxTokens: boolean;
  /** Undefined: the kind publishes no load metrics we use (no scrape). */
  readonly metrics: MetricsReader | undefined;
  /** Undefined: the runtime has no per-response load report (`backends[].loadReport` does nothing). */
  readonly loadReport: LoadReport | undefined;
  /** Reads the served models (and whatever else the runtime tells about its capacity). */
  discover(get: KindGet, options: { wantSlots: boolean }): Promise<Discovery>;
  /** API surfaces the runtime serves on their own paths; the others are translated (see src/surfaces/support.ts). */
  readonly nativeSurfaces: readonly SurfaceName[];
  /**
   * The body members that keep one tenant's requests from reusing another's prefix cache (`isolation: tenant`),
   * given the tenant's salt; undefined: the runtime offers no such control, and config validation refuses it.
   */
  readonly tenantIsolation: ((salt: string) => SpliceEdit[]) | undefined;
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

/** Discovery from `/v1/models` alone, for runtimes that say everything there. */
export async function discoverFromModelList(get: KindGet, contextOf: (entry: Record<string, unknown>) => unknown): Promise<DiscoveredModel[] | undefined> {
  const { status, body } = await get('/v1/models', true);
  return status === 200 ? readModelList(JSON.parse(body), contextOf) : undefined;
}
