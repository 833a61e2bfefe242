/**
 * SGLang's OpenAI-compatible server (`sglang serve` / `python -m sglang.launch_server`), as read in
 * python/sglang/srt/entrypoints/http_server.py, entrypoints/openai/ and the scheduler's metrics collector.
 * Quirks:
 * - `GET /health` (and `/health_generate`) runs a one-token generation unless the server was started with
 *   SGLANG_ENABLE_HEALTH_ENDPOINT_GENERATION=0, and polls for its result once a second: a healthy answer
 *   takes about a second, so `health.timeoutMs` must stay above that (the default 2 s does). It answers 503
 *   with an empty body while the server warms up after loading and while it shuts down — read as `loading`
 *   (out of rotation at once); an engine that stopped answering makes the probe time out (`down`).
 * - `--api-key` guards every path but `/health*` and `/metrics`, and wants exactly `Authorization: Bearer <key>`;
 *   a wrong key gets 401 `{"error":"Unauthorized"}`.
 * - `/metrics` exists only with `--enable-metrics` (404 otherwise). Gauges are labelled (`model_name`,
 *   `engine_type`, `tp_rank`, `pp_rank`, and `dp_rank` with data parallelism), so they are summed:
 *   `sglang:num_running_reqs`, `sglang:num_queue_reqs`; KV-cache use is `sglang:num_used_tokens` over
 *   `sglang:max_total_num_tokens` (both sum correctly across ranks), or `sglang:token_usage` from releases
 *   without the pool-size gauge.
 * - `/v1/models` cards carry the context window as `max_model_len`. `/get_model_info` (`/model_info` in
 *   newer releases) reports the model path and whether it generates, but no context length, so it is not read.
 * - Errors are flat: `{"object":"error","message","type":"BadRequestError","param":null,"code":400}`.
 * - A stream sends its headers at once, so an error found while preparing the request (a prompt over the
 *   context window) arrives as `data: {"error":{...}}` followed by `data: [DONE]` in a 200 stream.
 * - Refuses a prompt of `context_len` tokens or more ("The input (N tokens) is longer than the model's
 *   context length (M tokens).") and prompt + max_tokens over it ("Requested token count exceeds the
 *   model's maximum context length of M tokens…") unless started with `--allow-auto-truncate`.
 * - `stream_options.include_usage` defaults to false; `/v1/completions` defaults max_tokens to 16.
 * - `POST /tokenize` (also `/v1/tokenize`) counts a prompt or chat messages: `{tokens, count, max_model_len}`.
 * - It has its own `/v1/responses` and (for cross-encoder models) `/v1/rerank`, but neither is used by default:
 *   only its chat, completions and embeddings are checked here (and simulated), so Responses requests are
 *   translated onto chat and rerank is not sent to it; `backends[].surfaces` opts in.
 */
import { discoverFromModelList, saltEdits, type BackendKind } from './kind.ts';

const running = 'sglang:num_running_reqs';
const queued = 'sglang:num_queue_reqs';
const usedTokens = 'sglang:num_used_tokens';
const poolTokens = 'sglang:max_total_num_tokens';
const tokenUsage = 'sglang:token_usage';

export const sglangKind: BackendKind = {
  name: 'sglang',
  health: {
    path: '/health',
    sendsKey: false,
    interpret: (status) => (status === 200 ? 'up' : status === 503 ? 'loading' : 'down'),
  },
  streamUpstreamByDefault: false,
  closesAfterStream: false,
  contextCountsMaxTokens: true,
  usageFromTimings: false,
  nativeSurfaces: ['chat', 'completion', 'embedding'],
  // SGLang keys its radix cache on cache_salt too.
  tenantIsolation: saltEdits,
  metrics: {
    names: [running, queued, usedTokens, poolTokens, tokenUsage],
    read(gauges) {
      const used = gauges.get(usedTokens);
      const pool = gauges.get(poolTokens);
      const kvCacheUsage = used !== undefined && pool !== undefined && pool > 0 ? used / pool : gauges.get(tokenUsage);
      return { queued: gauges.get(queued), running: gauges.get(running), kvCacheUsage };
    },
    failureHint: (status) => (status === 404 ? 'sglang needs --enable-metrics' : undefined),
  },
  loadReport: undefined,
  discover: async (get) => ({ models: await discoverFromModelList(get, (entry) => entry.max_model_len) }),
};
