import type { BackendKind } from './kind.ts';

/** A generic OpenAI-compatible server: healthy when `/v1/models` answers 200. */
export const openaiKind: BackendKind = {
  name: 'openai',
  healthPath: '/v1/models',
  interpretHealth: (status) => (status === 200 ? 'up' : 'down'),
  streamUpstreamByDefault: false,
};
