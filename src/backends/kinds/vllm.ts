/**
 * vLLM's OpenAI-compatible server (V1 engine). Quirks:
 * - `GET /health` is 200 with an empty body when ready and 503 once the engine died; while the model
 *   loads the port refuses connections (the caller reads that as `down`). `--api-key` guards only /v1
 *   paths, so the probe goes without the key.
 * - `/metrics` is always on and open. Gauges are labelled by `model_name` and `engine` (summed here):
 *   `vllm:num_requests_running`, `vllm:num_requests_waiting`, `vllm:kv_cache_usage_perc` (0..1), which
 *   releases before the V1 rename called `vllm:gpu_cache_usage_perc`.
 * - `/v1/models` entries carry the context window as `max_model_len`.
 * - Per-response load report: send `endpoint-load-metrics-format: TEXT` and every answer carries
 *   `endpoint-load-metrics` (`TEXT named_metrics.kv_cache_usage_perc=…, named_metrics.num_requests_waiting=…`,
 *   or the JSON form) — load feedback fresher than any scrape.
 * - Refuses prompt + max_tokens beyond `max_model_len` (400, "This model's maximum context length is …").
 */
import { discoverFromModelList, saltEdits, type BackendKind, type LoadReport } from './kind.ts';

const running = 'vllm:num_requests_running';
const waiting = 'vllm:num_requests_waiting';
const kvCache = 'vllm:kv_cache_usage_perc';
const kvCacheOld = 'vllm:gpu_cache_usage_perc';

function finite(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const number = Number(value);
  return Number.isFinite(number) ? number : undefined;
}

/** Reads `endpoint-load-metrics` in either form (TEXT `k=v, ...` or JSON, with or without the format prefix). */
export function readVllmLoadReport(value: string): { queued?: number; kvCacheUsage?: number } | undefined {
  const text = value.trim().replace(/^(TEXT|JSON)\s+/i, '');
  if (text.length === 0) return undefined;
  let queued: number | undefined;
  let kvCacheUsage: number | undefined;
  if (text.startsWith('{')) {
    let parsed: Record<string, unknown> & { named_metrics?: Record<string, unknown> };
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      return undefined;
    }
    const metrics = { ...parsed, ...(parsed.named_metrics ?? {}) };
    queued = finite(metrics.num_requests_waiting);
    kvCacheUsage = finite(metrics.kv_cache_usage_perc ?? metrics.kv_cache_utilization);
  } else {
    for (const pair of text.split(',')) {
      const [rawKey = '', rawValue = ''] = pair.split('=');
      const key = rawKey.trim();
      if (key.endsWith('num_requests_waiting')) queued = finite(rawValue.trim());
      else if (key.endsWith('kv_cache_usage_perc') || key.endsWith('kv_cache_utilization')) kvCacheUsage = finite(rawValue.trim());
    }
  }
  if (queued === undefined && kvCacheUsage === undefined) return undefined;
  return { ...(queued === undefined ? {} : { queued }), ...(kvCacheUsage === undefined ? {} : { kvCacheUsage }) };
}

const loadReport: LoadReport = {
  requestHeaders: { 'endpoint-load-metrics-format': 'TEXT' },
  responseHeader: 'endpoint-load-metrics',
  read: readVllmLoadReport,
};

export const vllmKind: BackendKind = {
  name: 'vllm',
  health: { path: '/health', sendsKey: false, interpret: (status) => (status === 200 ? 'up' : 'down') },
  streamUpstreamByDefault: false,
  closesAfterStream: false,
  contextCountsMaxTokens: true,
  usageFromTimings: false,
  nativeSurfaces: ['chat', 'completion', 'embedding', 'responses', 'messages', 'rerank'],
  // Prefix-cache blocks are shared only between requests with the same cache_salt (vLLM >= 0.9).
  tenantIsolation: saltEdits,
  metrics: {
    names: [running, waiting, kvCache, kvCacheOld],
    read: (gauges) => ({
      queued: gauges.get(waiting),
      running: gauges.get(running),
      kvCacheUsage: gauges.get(kvCache) ?? gauges.get(kvCacheOld),
    }),
  },
  loadReport,
  discover: async (get) => ({ models: await discoverFromModelList(get, (entry) => entry.max_model_len) }),
};
