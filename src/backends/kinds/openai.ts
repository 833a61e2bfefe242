/**
 * A generic OpenAI-compatible server (a hosted API, another gateway). Quirks:
 * - No health endpoint of its own: healthy when `GET /v1/models` answers 200, which needs the API key.
 * - No load metrics; the router relies on its own in-flight counts and latency.
 * - The context window may appear in `/v1/models` as `context_length` (OpenRouter-style) or
 *   `max_model_len` (vLLM-style proxies).
 * - OpenAI semantics: prompt + max_tokens must fit the window.
 */
import { discoverFromModelList, type BackendKind } from './kind.ts';

export const openaiKind: BackendKind = {
  name: 'openai',
  health: { path: '/v1/models', sendsKey: true, interpret: (status) => (status === 200 ? 'up' : 'down') },
  streamUpstreamByDefault: false,
  closesAfterStream: false,
  contextCountsMaxTokens: true,
  usageFromTimings: false,
  nativeSurfaces: ['chat', 'completion', 'embedding'],
  // An OpenAI-compatible service of unknown make: nothing we send is known to separate its caches.
  tenantIsolation: undefined,
  metrics: undefined,
  loadReport: undefined,
  discover: async (get) => ({ models: await discoverFromModelList(get, (entry) => entry.context_length ?? entry.max_model_len) }),
};
