import { readModelList, type BackendKind } from './kind.ts';

/** A generic OpenAI-compatible server: healthy when `/v1/models` answers 200; no load metrics. */
export const openaiKind: BackendKind = {
  name: 'openai',
  healthPath: '/v1/models',
  interpretHealth: (status) => (status === 200 ? 'up' : 'down'),
  streamUpstreamByDefault: false,
  closesAfterStream: false,
  usageFromTimings: false,
  metricNames: [],
  readLoad: () => ({ queued: undefined, running: undefined, kvCacheUsage: undefined }),
  readModels: (body) => readModelList(body, (entry) => entry.context_length ?? entry.max_model_len),
};
