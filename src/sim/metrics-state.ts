// Raw counters behind /metrics. Both flavours record the same events; each renders
// its own names and semantics from them (metrics-text.ts). Recording is a few
// additions per request, so it costs nothing on the hot path.

/** A Prometheus-style histogram; counts are per bucket and made cumulative when rendered. */
export class Histogram {
  readonly bounds: readonly number[];
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  /** Records `times` observations of `value` at once (inter-token gaps come in bulk). */
  observe(value: number, times = 1): void {
    if (times <= 0) return;
    let index = 0;
    while (index < this.bounds.length && value > (this.bounds[index] ?? Infinity)) index++;
    this.counts[index] = (this.counts[index] ?? 0) + times;
    this.sum += value * times;
    this.count += times;
  }
}

// Bucket bounds of vLLM's own histograms (vllm/v1/metrics/loggers.py).
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0];
const ITL_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0];
const REQUEST_LATENCY_BUCKETS = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0];

/** vLLM's FinishReason values, all exposed from the start like prometheus_client does. */
export type EngineFinish = 'stop' | 'length' | 'abort' | 'error';

export interface PrefillSample {
  promptTokens: number;
  cachedTokens: number;
  queueMs: number;
  prefillMs: number;
  busySlots: number;
}

export interface FinishSample {
  generated: number;
  reason: EngineFinish;
  e2eMs: number;
  decodeMs: number;
  interTokenMs: number;
  busySlots: number;
  /** Prompt + generated tokens, for llama.cpp's n_tokens_max high-water mark. */
  contextTokens: number;
}

export class MetricsState {
  readonly startedAtUnix = Math.floor(Date.now() / 1000);
  promptTokens = 0;
  promptTokensProcessed = 0;
  generationTokens = 0;
  prefixQueries = 0;
  prefixHits = 0;
  cancelled = 0;
  readonly success: Record<EngineFinish, number> = { stop: 0, length: 0, abort: 0, error: 0 };
  readonly ttft = new Histogram(TTFT_BUCKETS);
  readonly interToken = new Histogram(ITL_BUCKETS);
  readonly e2e = new Histogram(REQUEST_LATENCY_BUCKETS);
  readonly queue = new Histogram(REQUEST_LATENCY_BUCKETS);

  // llama.cpp's counters, and the "bucket" it averages its throughput gauges over.
  promptSeconds = 0;
  predictedSeconds = 0;
  decodeCalls = 0;
  busySlotsTotal = 0;
  tokensMax = 0;
  private bucketPromptTokens = 0;
  private bucketPromptMs = 0;
  private bucketPredictedTokens = 0;
  private bucketPredictedMs = 0;

  recordPrefill(sample: PrefillSample): void {
    const processed = sample.promptTokens - sample.cachedTokens;
    this.promptTokens += sample.promptTokens;
    this.promptTokensProcessed += processed;
    this.prefixQueries += sample.promptTokens;
    this.prefixHits += sample.cachedTokens;
    this.ttft.observe((sample.queueMs + sample.prefillMs) / 1000);
    this.queue.observe(sample.queueMs / 1000);
    this.promptSeconds += sample.prefillMs / 1000;
    this.bucketPromptTokens += processed;
    this.bucketPromptMs += sample.prefillMs;
    this.decodeCalls += 1;
    this.busySlotsTotal += sample.busySlots;
  }

  recordFinish(sample: FinishSample): void {
    this.generationTokens += sample.generated;
    this.success[sample.reason] += 1;
    this.e2e.observe(sample.e2eMs / 1000);
    if (sample.generated > 1) this.interToken.observe(sample.interTokenMs / 1000, sample.generated - 1);
    this.predictedSeconds += sample.decodeMs / 1000;
    this.bucketPredictedTokens += sample.generated;
    this.bucketPredictedMs += sample.decodeMs;
    // One decode for the prompt (counted at prefill), one per token after the first.
    const decodes = Math.max(sample.generated - 1, 0);
    this.decodeCalls += decodes;
    this.busySlotsTotal += sample.busySlots * decodes;
    if (sample.contextTokens > this.tokensMax) this.tokensMax = sample.contextTokens;
  }

  /**
   * llama.cpp's two throughput gauges are averages since the previous scrape and
   * every scrape resets them; reproducing that lets the gateway's tests see the
   * disturbance a scraper causes.
   */
  takeThroughput(): { promptPerSecond: number; predictedPerSecond: number } {
    const promptPerSecond = this.bucketPromptMs > 0 ? (1000 * this.bucketPromptTokens) / this.bucketPromptMs : 0;
    const predictedPerSecond = this.bucketPredictedMs > 0 ? (1000 * this.bucketPredictedTokens) / this.bucketPredictedMs : 0;
    this.bucketPromptTokens = 0;
    this.bucketPromptMs = 0;
    this.bucketPredictedTokens = 0;
    this.bucketPredictedMs = 0;
    return { promptPerSecond, predictedPerSecond };
  }
}
