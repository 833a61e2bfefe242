import type { BackendKind } from './kind.ts';

/** vLLM: `/health` is 200 with an empty body when ready, 503 when the engine died; the port refuses while loading. */
export const vllmKind: BackendKind = {
  name: 'vllm',
  healthPath: '/health',
  interpretHealth: (status) => (status === 200 ? 'up' : 'down'),
  streamUpstreamByDefault: false,
};
