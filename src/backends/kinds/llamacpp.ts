/**
 * llama.cpp `llama-server`. Quirks:
 * - `GET /health` answers 503 `{"error":{"code":503,"message":"Loading model",...}}` while loading, then
 *   200 `{"status":"ok"}`; it skips the API key, so the probe goes without it.
 * - `/metrics` exists only with `--metrics` (501 otherwise) and needs the API key when one is set. No
 *   labels. Only the two load gauges are read (`llamacpp:requests_processing`, `llamacpp:requests_deferred`):
 *   the throughput gauges (`llamacpp:*_tokens_seconds`) are averages since the previous scrape and are
 *   reset by every scrape, so reading them would disturb other scrapers and give the router numbers that
 *   depend on who scraped last. No KV-cache gauge in current builds. Without `--metrics` (the default) load is
 *   read from `GET /slots` (on by default, also behind the key): its busy slots (`is_processing`) are the running
 *   requests; it shows no queue.
 * - `/v1/models` entries carry the context window as `meta.n_ctx`; `GET /props` reports `total_slots`.
 * - A non-streaming request whose client leaves is noticed only after about a second without results
 *   (and never while something polls /metrics), so the gateway streams from it by default.
 * - It closes a connection a few ms after a streamed answer while still sending keep-alive.
 * - A streamed answer's last chunk carries `timings` (prompt_n, cache_n, predicted_n): usage without
 *   asking for the extra usage chunk.
 * - Refuses only a prompt that does not fit `n_ctx` (400 `exceed_context_size_error`); max_tokens past the
 *   window is served, generation stops when the window is full.
 * - Serves `/v1/messages` (+ `count_tokens`) and `/v1/rerank` (`--reranking`) natively. Its `/v1/responses` is
 *   not used natively by default: its stream events lack `sequence_number`, `output_index` and
 *   `content_index` (the official SDKs' `responses.stream()` accumulator rejects them), it ignores
 *   `text.format` and reports `completed` for an answer cut by `max_output_tokens`; the gateway's translation
 *   onto chat does all three right. `backends[].surfaces.responses: native` uses it anyway.
 */
import { discoverFromModelList, noPromptCache, type BackendKind, type Discovery } from './kind.ts';

const processing = 'llamacpp:requests_processing';
const deferred = 'llamacpp:requests_deferred';

export const llamacppKind: BackendKind = {
  name: 'llamacpp',
  health: {
    path: '/health',
    sendsKey: false,
    interpret: (status, body) => {
      if (status === 200) return 'up';
      if (status === 503 && body.includes('Loading')) return 'loading';
      return 'down';
    },
  },
  streamUpstreamByDefault: true,
  closesAfterStream: true,
  contextCountsMaxTokens: false,
  usageFromTimings: true,
  nativeSurfaces: ['chat', 'completion', 'embedding', 'messages', 'rerank'],
  // llama.cpp has no salt: a slot reuses whatever prefix it holds. cache_prompt: false makes every isolated
  // request compute its prompt again (slower prefill, nothing shared); pinning tenants to slots cannot keep more
  // tenants than slots apart.
  tenantIsolation: () => noPromptCache,
  metrics: {
    names: [processing, deferred],
    read: (gauges) => ({ queued: gauges.get(deferred), running: gauges.get(processing), kvCacheUsage: undefined }),
    failureHint: (status) => (status === 501 ? 'llama-server needs --metrics, or /slots not disabled' : undefined),
    fallback: {
      when: (status) => status === 501,
      path: '/slots',
      read(body) {
        const slots = JSON.parse(body) as unknown;
        if (!Array.isArray(slots)) return undefined;
        let running = 0;
        for (const slot of slots) if ((slot as { is_processing?: unknown } | null)?.is_processing === true) running++;
        return { queued: undefined, running, kvCacheUsage: undefined };
      },
    },
  },
  loadReport: undefined,
  async discover(get, { wantSlots }) {
    const discovery: Discovery = {
      models: await discoverFromModelList(get, (entry) => (entry.meta as { n_ctx?: unknown } | undefined)?.n_ctx),
    };
    if (wantSlots) {
      const props = await get('/props', true);
      const slots = Number((JSON.parse(props.body) as { total_slots?: unknown }).total_slots);
      if (props.status === 200 && Number.isInteger(slots) && slots > 0) discovery.slots = slots;
    }
    return discovery;
  },
};
