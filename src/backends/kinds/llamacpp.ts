import { readModelList, type BackendKind } from './kind.ts';

const processing = 'llamacpp:requests_processing';
const deferred = 'llamacpp:requests_deferred';

/**
 * llama.cpp `llama-server`: `/health` answers 503 "Loading model" until ready, then 200 `{"status":"ok"}`.
 * A non-streaming request whose client leaves is noticed only after about a second without results
 * (and never while something polls /metrics), so the gateway streams from it by default.
 * Only the two load gauges are read: the throughput gauges (`llamacpp:*_tokens_seconds`) are averages
 * since the previous scrape and are reset by every scrape, so reading them would disturb other scrapers
 * and give the router numbers that depend on who scraped last.
 */
export const llamacppKind: BackendKind = {
  name: 'llamacpp',
  healthPath: '/health',
  interpretHealth: (status, body) => {
    if (status === 200) return 'up';
    if (status === 503 && body.includes('Loading')) return 'loading';
    return 'down';
  },
  streamUpstreamByDefault: true,
  closesAfterStream: true,
  usageFromTimings: true,
  metricNames: [processing, deferred],
  readLoad: (gauges) => ({ queued: gauges.get(deferred), running: gauges.get(processing), kvCacheUsage: undefined }),
  readModels: (body) => readModelList(body, (entry) => (entry.meta as { n_ctx?: unknown } | undefined)?.n_ctx),
};
