/**
 * Live signals read from the runtimes: load gauges from /metrics (sub-second),
 * served models and context lengths from /v1/models, llama.cpp slot count from
 * /props, and vLLM's per-response `endpoint-load-metrics` report.
 */
import type { Backend } from './registry.ts';
import { readGauges } from './prometheus-text.ts';

async function get(backend: Backend, path: string, timeoutMs: number, withAuth: boolean): Promise<{ status: number; body: string }> {
  const headers: Record<string, string> = {};
  if (withAuth && backend.authorization) headers.authorization = backend.authorization;
  const response = await backend.dispatcher.request({
    origin: backend.origin,
    path: backend.basePath + path,
    method: 'GET',
    headers,
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: response.statusCode, body: await response.body.text() };
}

/** Scrapes /metrics once; on failure keeps the old figures and records the error (they go stale). */
export async function scrapeLoad(backend: Backend, now: () => number): Promise<void> {
  if (backend.kind.metricNames.length === 0) return;
  try {
    // llama.cpp guards /metrics with its API key; vLLM leaves it open (sending the key does no harm).
    const { status, body } = await get(backend, '/metrics', backend.config.scrape.timeoutMs, true);
    if (status !== 200) throw new Error(`HTTP ${status}${status === 501 ? ' (llama-server needs --metrics)' : ''}`);
    const load = backend.kind.readLoad(readGauges(body, backend.kind.metricNames));
    backend.live.queued = load.queued;
    backend.live.running = load.running;
    backend.live.kvCacheUsage = load.kvCacheUsage;
    backend.live.scrapedAt = now();
    backend.live.scrapeError = undefined;
  } catch (error) {
    backend.live.scrapeError = (error as Error).message;
  }
}

/** Reads served models (and llama.cpp's slot count); keeps what config declares where the runtime is silent. */
export async function discoverModels(backend: Backend, now: () => number): Promise<void> {
  try {
    const { status, body } = await get(backend, '/v1/models', backend.config.health.timeoutMs, true);
    if (status === 200) {
      for (const model of backend.kind.readModels(JSON.parse(body))) backend.live.models.set(model.id, model.contextLength);
      backend.live.modelsDiscoveredAt = now();
    }
    if (backend.kind.name === 'llamacpp' && backend.config.slots === undefined) {
      const props = await get(backend, '/props', backend.config.health.timeoutMs, true);
      const slots = Number((JSON.parse(props.body) as { total_slots?: unknown }).total_slots);
      if (props.status === 200 && Number.isInteger(slots) && slots > 0) backend.live.slots = slots;
    }
  } catch {
    // discovery is best effort; health probes report reachability
  }
}

/**
 * Reads vLLM's `endpoint-load-metrics` response header (TEXT `k=v, ...` or JSON):
 * fresher than any scrape, it arrives with every answer.
 */
export function applyLoadReport(backend: Backend, header: string | string[] | undefined, now: number): void {
  if (typeof header !== 'string' || header.length === 0) return;
  let waiting: number | undefined;
  let kv: number | undefined;
  const text = header.trim().replace(/^(TEXT|JSON)\s+/i, '');
  if (text.startsWith('{')) {
    try {
      const parsed = JSON.parse(text) as Record<string, unknown> & { named_metrics?: Record<string, unknown> };
      const metrics = { ...parsed, ...(parsed.named_metrics ?? {}) };
      waiting = Number(metrics.num_requests_waiting);
      kv = Number(metrics.kv_cache_usage_perc ?? metrics.kv_cache_utilization);
    } catch {
      return;
    }
  } else {
    for (const pair of text.split(',')) {
      const [rawKey = '', rawValue = ''] = pair.split('=');
      const key = rawKey.trim();
      if (key.endsWith('num_requests_waiting')) waiting = Number(rawValue);
      else if (key.endsWith('kv_cache_usage_perc') || key.endsWith('kv_cache_utilization')) kv = Number(rawValue);
    }
  }
  if (waiting !== undefined && Number.isFinite(waiting)) backend.live.queued = waiting;
  if (kv !== undefined && Number.isFinite(kv)) backend.live.kvCacheUsage = kv;
  if ((waiting !== undefined && Number.isFinite(waiting)) || (kv !== undefined && Number.isFinite(kv))) backend.live.scrapedAt = now;
}
