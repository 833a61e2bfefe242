import { readModelList, type BackendKind } from './kind.ts';

const running = 'vllm:num_requests_running';
const waiting = 'vllm:num_requests_waiting';
const kvCache = 'vllm:kv_cache_usage_perc';
const kvCacheOld = 'vllm:gpu_cache_usage_perc'; // releases before the V1 engine rename

/** vLLM: `/health` is 200 with an empty body when ready, 503 when the engine died; the port refuses while loading. */
export const vllmKind: BackendKind = {
  name: 'vllm',
  healthPath: '/health',
  interpretHealth: (status) => (status === 200 ? 'up' : 'down'),
  streamUpstreamByDefault: false,
  closesAfterStream: false,
  usageFromTimings: false,
  metricNames: [running, waiting, kvCache, kvCacheOld],
  readLoad: (gauges) => ({
    queued: gauges.get(waiting),
    running: gauges.get(running),
    kvCacheUsage: gauges.get(kvCache) ?? gauges.get(kvCacheOld),
  }),
  readModels: (body) => readModelList(body, (entry) => entry.max_model_len),
};
