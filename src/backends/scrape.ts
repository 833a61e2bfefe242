/**
 * Live signals read from the runtimes: load gauges from /metrics (sub-second),
 * served models, context windows and slots from the kind's discovery, and the
 * per-response load reports of kinds that have them. What to read and how to
 * read it is the kind's business (kinds/); this file applies the answers.
 */
import type { KindGet, MetricsReader } from './kinds/index.ts';
import type { Backend } from './registry.ts';
import { readGauges } from './prometheus-text.ts';

function getter(backend: Backend, timeoutMs: number): KindGet {
  return async (path, withKey) => {
    const headers: Record<string, string> = {};
    if (withKey && backend.authorization) headers.authorization = backend.authorization;
    const response = await backend.dispatcher.request({
      origin: backend.origin,
      path: backend.basePath + path,
      method: 'GET',
      headers,
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: response.statusCode, body: await response.body.text() };
  };
}

/** Backends whose /metrics is off, read through their kind's fallback: scrapes since /metrics was last tried. */
const onFallback = new WeakMap<Backend, number>();
/** A backend on the fallback has /metrics tried again every this many scrapes (it may have been restarted with it). */
const RETRY_METRICS_EVERY = 60;

/**
 * Scrapes the load once: /metrics, or the kind's fallback when the runtime has metrics off; on failure keeps
 * the old figures and records the error (they go stale).
 */
export async function scrapeLoad(backend: Backend, now: () => number): Promise<void> {
  const metrics = backend.kind.metrics;
  if (metrics === undefined) return;
  const get = getter(backend, backend.config.scrape.timeoutMs);
  const fallback = metrics.fallback;
  try {
    const scrapes = onFallback.get(backend);
    if (fallback !== undefined && scrapes !== undefined && scrapes % RETRY_METRICS_EVERY !== 0) {
      onFallback.set(backend, scrapes + 1);
      return await scrapeFallback(backend, fallback, get, now);
    }
    const ended = backend.endedCount;
    // Some runtimes guard /metrics with their API key (llama.cpp); sending it to the others does no harm.
    const { status, body } = await get('/metrics', true);
    if (status === 200) {
      onFallback.delete(backend);
      backend.applyScrape(metrics.read(readGauges(body, metrics.names)), now(), ended);
      return;
    }
    if (fallback?.when(status)) {
      onFallback.set(backend, (scrapes ?? 0) + 1);
      return await scrapeFallback(backend, fallback, get, now);
    }
    const hint = metrics.failureHint?.(status);
    throw new Error(`HTTP ${status}${hint ? ` (${hint})` : ''}`);
  } catch (error) {
    backend.scrapeFailed((error as Error).message);
  }
}

async function scrapeFallback(backend: Backend, fallback: NonNullable<MetricsReader['fallback']>, get: KindGet, now: () => number): Promise<void> {
  const ended = backend.endedCount;
  const { status, body } = await get(fallback.path, true);
  if (status !== 200) throw new Error(`/metrics off and ${fallback.path} answered HTTP ${status}`);
  const load = fallback.read(body);
  if (load === undefined) throw new Error(`${fallback.path}: no load figures in the answer`);
  backend.applyScrape(load, now(), ended);
}

/** Reads served models (and slots where the kind reports them); keeps what config declares where the runtime is silent. */
export async function discoverModels(backend: Backend, now: () => number): Promise<void> {
  try {
    const discovery = await backend.kind.discover(getter(backend, backend.config.health.timeoutMs), { wantSlots: backend.config.slots === undefined });
    backend.applyDiscovery(discovery.models, discovery.slots, now());
  } catch {
    // discovery is best effort; health probes report reachability
  }
}

/**
 * Applies the kind's per-response load report when the backend asked for one
 * (`backends[].loadReport`): fresher than any scrape, it arrives with every answer.
 */
export function applyLoadReport(backend: Backend, headers: Readonly<Record<string, string | string[] | undefined>>, now: number): void {
  const report = backend.kind.loadReport;
  if (report === undefined) return;
  const value = headers[report.responseHeader];
  if (typeof value !== 'string' || value.length === 0) return;
  const load = report.read(value);
  if (load === undefined) return;
  backend.applyLoadReport(load, now);
}
