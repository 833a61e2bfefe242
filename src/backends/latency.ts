/**
 * What the gateway learns about one backend's service times, apart from any
 * queueing, and the requests it has in flight there:
 *
 * - prefill: time to first token of a request that did not wait for a slot,
 *   as a line in its prompt tokens (constant + per-token slope), fitted by
 *   weighted least squares over recent samples;
 * - time per output token (EWMA, streamed answers);
 * - output length (EWMA of completion tokens), which caps what a request
 *   ahead in the queue is expected to generate.
 *
 * Figures are never forgotten: a backend back from idle is predicted from its
 * last figures. Old samples lose weight with time (half-life SAMPLE_HALF_LIFE_MS)
 * as well as with every new sample, so fresh evidence takes over quickly.
 */

/** Exponentially weighted moving average; undefined until the first sample. */
export class Ewma {
  value: number | undefined;
  private readonly alpha: number;
  constructor(alpha = 0.2) {
    this.alpha = alpha;
  }
  update(sample: number): void {
    this.value = this.value === undefined ? sample : this.value + this.alpha * (sample - this.value);
  }
}

/** Weight kept by older prefill samples at each new one (≈ the last 20 samples count). */
const SAMPLE_DECAY = 0.95;
/** Older prefill samples also lose half their weight per this much idle time. */
export const SAMPLE_HALF_LIFE_MS = 300_000;
/** Below this spread of prompt sizes (tokens², weighted variance) the slope is not fitted: the mean is used. */
const MIN_PROMPT_VARIANCE = 100;

/**
 * TTFT = intercept + slope × prompt tokens, by exponentially weighted least
 * squares. With too little spread in prompt sizes the slope is 0 and the
 * intercept is the weighted mean.
 */
export class PrefillFit {
  private weight = 0;
  private sumX = 0;
  private sumY = 0;
  private sumXX = 0;
  private sumXY = 0;
  private lastAt = 0;
  samples = 0;
  intercept = 0;
  slope = 0;

  add(promptTokens: number, ttftMs: number, now: number): void {
    let keep = SAMPLE_DECAY;
    if (this.lastAt !== 0 && now > this.lastAt) keep *= 0.5 ** ((now - this.lastAt) / SAMPLE_HALF_LIFE_MS);
    this.lastAt = now;
    this.weight = this.weight * keep + 1;
    this.sumX = this.sumX * keep + promptTokens;
    this.sumY = this.sumY * keep + ttftMs;
    this.sumXX = this.sumXX * keep + promptTokens * promptTokens;
    this.sumXY = this.sumXY * keep + promptTokens * ttftMs;
    this.samples++;
    const meanX = this.sumX / this.weight;
    const meanY = this.sumY / this.weight;
    const variance = this.sumXX / this.weight - meanX * meanX;
    let slope = 0;
    if (variance > MIN_PROMPT_VARIANCE) slope = Math.max(0, (this.sumXY / this.weight - meanX * meanY) / variance);
    this.slope = slope;
    this.intercept = Math.max(0, meanY - slope * meanX);
  }

  /** Predicted prefill time (ms) of a prompt; undefined before any sample. */
  predict(promptTokens: number): number | undefined {
    if (this.samples === 0) return undefined;
    return this.intercept + this.slope * Math.max(0, promptTokens);
  }
}

/** One request the gateway has in flight to the backend (see Router.acquire). */
export interface InflightJob {
  /** Clock time (ms) the attempt was sent. */
  startedAt: number;
  promptTokens: number;
  /** The client's max_tokens, undefined when it set none. */
  maxTokens: number | undefined;
  /** Predicted TTFT at decision time (ms), for the prediction-error metric. */
  predictedTtftMs: number | undefined;
  /** True when it had to wait for a slot when sent: its TTFT includes queueing, not a prefill sample. */
  queuedAtSend: boolean;
  /** Clock time of its first token, once seen. */
  firstTokenAt: number;
}

/** Service-time figures and in-flight requests of one backend. */
export class ServiceStats {
  readonly prefill = new PrefillFit();
  readonly tpot = new Ewma();
  readonly outputTokens = new Ewma(0.1);
  /** Clock time of the last observation (0 = never). */
  lastSampleAt = 0;
  /** The gateway's requests in flight, in the order they were sent. */
  readonly inflight = new Set<InflightJob>();

  /** True once a request finished here: predictions rest on measurements, not priors. */
  get measured(): boolean {
    return this.prefill.samples > 0;
  }

  /** A prefill sample: `ttftMs` from send to first token of a request that did not queue. */
  observePrefill(promptTokens: number, ttftMs: number, now: number): void {
    this.prefill.add(promptTokens, ttftMs, now);
    this.lastSampleAt = now;
  }

  /** A finished request's decode figures. */
  observeDecode(tpotMs: number | undefined, completionTokens: number | undefined, now: number): void {
    if (tpotMs !== undefined && tpotMs > 0 && Number.isFinite(tpotMs)) this.tpot.update(tpotMs);
    if (completionTokens !== undefined && completionTokens > 0) this.outputTokens.update(completionTokens);
    this.lastSampleAt = now;
  }
}
