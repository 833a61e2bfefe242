import type { BackendKind } from './kind.ts';

/**
 * llama.cpp `llama-server`: `/health` answers 503 "Loading model" until ready, then 200 `{"status":"ok"}`.
 * A non-streaming request whose client leaves is noticed only after about a second without results
 * (and never while something polls /metrics), so the gateway streams from it by default.
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
};
