/**
 * What the gateway learns about one backend's service times, apart from any
 * queueing (per model it serves: ModelFigures), and the requests it has in
 * flight there (all models together: they share the slots):
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
import { Bag, type BagMember } from '../bag.ts';

/**
 * Exponentially weighted moving average; undefined until the first sample. With a prior, it starts from the
 * prior as if `priorWeight` samples had shown it (a running mean until the EWMA's own weight takes over).
 */
export class Ewma {
  value: number | undefined;
  samples = 0;
  private readonly alpha: number;
  private readonly prior: number | undefined;
  private readonly priorWeight: number;
  constructor(alpha = 0.2, prior?: number, priorWeight = 0) {
    this.alpha = alpha;
    this.prior = prior;
    this.priorWeight = priorWeight;
  }
  update(sample: number): void {
    this.samples++;
    const current = this.value ?? this.prior;
    if (current === undefined) {
      this.value = sample;
      return;
    }
    const step = Math.max(this.alpha, 1 / (this.samples + this.priorWeight));
    this.value = current + step * (sample - current);
  }
}

/** Weight kept by older prefill samples at each new one (≈ the last 20 samples count). */
const SAMPLE_DECAY = 0.95;
/** Older prefill samples also lose half their weight per this much idle time. */
export const SAMPLE_HALF_LIFE_MS = 300_000;
/** Below this spread of prompt sizes (weighted variance, tokens²: a standard deviation of 100) the slope is not fitted. */
const MIN_PROMPT_VARIANCE = 10_000;
/**
 * Until a slope is fitted, the mean TTFT is scaled to other prompt sizes in proportion to (OVERHEAD_TOKENS +
 * prompt): one long prompt must not make a backend look slow for short ones, nor one short prompt make it look
 * fast for long ones. (Scaling fully in proportion to the prompt was tried: a fast backend measured on short
 * prompts then looked slow for long ones, never got one, and never learnt its slope.)
 */
const OVERHEAD_TOKENS = 256;

/** The prompt size a backend's `prior.ttftMs` is for. */
export const PRIOR_PROMPT_TOKENS = 1000;

/**
 * TTFT = intercept + slope × prompt tokens, by exponentially weighted least
 * squares. With too little spread in prompt sizes (or a slope that comes out
 * negative) the mean is scaled instead (see OVERHEAD_TOKENS). Before any
 * sample, the backend's prior (for a PRIOR_PROMPT_TOKENS prompt) is scaled the
 * same way. (Counting the prior as one more sample in the fit was tried: a
 * prior 10× off bent the first lines so far that the fit fell back to the mean.)
 */
export class PrefillFit {
  private prior: number | undefined;
  private weight = 0;
  private sumX = 0;
  private sumY = 0;
  private sumXX = 0;
  private sumXY = 0;
  private lastAt = 0;
  samples = 0;
  intercept = 0;
  slope = 0;
  /** False while the line is the scaled mean (too little spread in prompt sizes). */
  fitted = false;
  /** The longest prompt sampled. */
  private longest = 0;

  constructor(priorTtftMs?: number) {
    this.prior = priorTtftMs;
  }

  /** A new prior from a config reload; the samples stay. */
  reconfigure(priorTtftMs: number | undefined): void {
    this.prior = priorTtftMs;
  }

  add(promptTokens: number, ttftMs: number, now: number): void {
    let keep = SAMPLE_DECAY;
    if (this.lastAt !== 0 && now > this.lastAt) keep *= 0.5 ** ((now - this.lastAt) / SAMPLE_HALF_LIFE_MS);
    this.accumulate(promptTokens, ttftMs, keep);
    if (promptTokens > this.longest) this.longest = promptTokens;
    this.samples++;
    this.lastAt = now;
    this.refit();
  }

  /** Adds one sample after multiplying the older ones' weight by `keep`. */
  private accumulate(promptTokens: number, ttftMs: number, keep: number): void {
    this.weight = this.weight * keep + 1;
    this.sumX = this.sumX * keep + promptTokens;
    this.sumY = this.sumY * keep + ttftMs;
    this.sumXX = this.sumXX * keep + promptTokens * promptTokens;
    this.sumXY = this.sumXY * keep + promptTokens * ttftMs;
  }

  private refit(): void {
    const meanX = this.sumX / this.weight;
    const meanY = this.sumY / this.weight;
    const variance = this.sumXX / this.weight - meanX * meanX;
    const slope = variance > MIN_PROMPT_VARIANCE ? (this.sumXY / this.weight - meanX * meanY) / variance : 0;
    this.fitted = slope > 0 && meanY - slope * meanX >= 0;
    if (this.fitted) {
      this.slope = slope;
      this.intercept = meanY - slope * meanX;
    } else {
      // The line through (−OVERHEAD_TOKENS, 0) and the means.
      this.slope = meanY / (OVERHEAD_TOKENS + Math.max(0, meanX));
      this.intercept = this.slope * OVERHEAD_TOKENS;
    }
  }

  /**
   * Predicted prefill time (ms) of a prompt: from the prior alone before any sample (undefined without one).
   * Until a slope is fitted, a prompt longer than those seen is predicted no faster than the prior says:
   * short samples alone tell nothing about long prompts.
   */
  predict(promptTokens: number): number | undefined {
    const prompt = Math.max(0, promptTokens);
    const prior = this.prior === undefined ? undefined : (this.prior * (OVERHEAD_TOKENS + prompt)) / (OVERHEAD_TOKENS + PRIOR_PROMPT_TOKENS);
    if (this.samples === 0) return prior;
    const line = this.intercept + this.slope * prompt;
    if (this.fitted || prior === undefined || prompt <= this.longest) return line;
    return Math.max(line, prior);
  }
}
/** One request the gateway has in flight to the backend (see Router.acquire). */
export interface InflightJob extends BagMember {
  /** Clock time (ms) the attempt was sent. */
  startedAt: number;
  /** Its place in sending order among the backend's jobs (the Bag keeps no order; the queue prediction needs it). */
  seq: number;
  promptTokens: number;
  /** The client's max_tokens, undefined when it set none. */
  maxTokens: number | undefined;
  /** Predicted TTFT at decision time (ms), for the prediction-error metric. */
  predictedTtftMs: number | undefined;
  /** True when it had to wait for a slot when sent: its TTFT includes queueing, not a prefill sample. */
  queuedAtSend: boolean;
  /** Clock time of its first token, once seen. */
  firstTokenAt: number;
  /** The route's answer lengths (Router), fed with its completion tokens. */
  answers: Ewma;
  /** The figures of the upstream model it asked for: what it measures feeds them. */
  figures: ModelFigures;
}

/**
 * Service-time figures of one model on a backend: a backend that serves several (vLLM with LoRA adapters, an
 * `openai` backend in front of a provider) keeps one set per model, since their speeds differ.
 */
export class ModelFigures {
  readonly prefill: PrefillFit;
  readonly tpot = new Ewma();
  /** Starts from the assumed 256 tokens as if seen 3 times: one short answer must not make a queue look short. */
  readonly outputTokens = new Ewma(0.1, 256, 3);

  /** `priorTtftMs`: the backend's prior.ttftMs (time to first token of an idle backend for a 1,000-token prompt). */
  constructor(priorTtftMs?: number) {
    this.prefill = new PrefillFit(priorTtftMs);
  }

  /** True once a request finished here: predictions rest on measurements, not priors. */
  get measured(): boolean {
    return this.prefill.samples > 0;
  }

  /** A prefill sample: `ttftMs` from send to first token of a request that did not queue. */
  observePrefill(promptTokens: number, ttftMs: number, now: number): void {
    this.prefill.add(promptTokens, ttftMs, now);
  }

  /** A finished request's decode figures. */
  observeDecode(tpotMs: number | undefined, completionTokens: number | undefined): void {
    if (tpotMs !== undefined && tpotMs > 0 && Number.isFinite(tpotMs)) this.tpot.update(tpotMs);
    if (completionTokens !== undefined && completionTokens > 0) this.outputTokens.update(completionTokens);
  }
}

/** Half-life of the recent-requests count (ServiceStats.recentSent). */
const RECENT_HALF_LIFE_MS = 30_000;

/** Service-time figures (per model) and in-flight requests (all models: they share the slots) of one backend. */
export class ServiceStats {
  /** The gateway's requests in flight, in no order (`seq` gives the order they were sent). */
  readonly inflight = new Bag<InflightJob>();
  readonly #models = new Map<string, ModelFigures>();
  #prior: number | undefined;
  /** What `main` answers before any model was seen: the prior alone (made once). */
  #unseen: ModelFigures | undefined;
  /** Requests sent here, each losing half its weight per RECENT_HALF_LIFE_MS: who got the recent ties. */
  #recent = 0;
  #recentAt = 0;

  /** `priorTtftMs`: the backend's prior.ttftMs, each model's starting point. */
  constructor(priorTtftMs?: number) {
    this.#prior = priorTtftMs;
  }

  /** The figures of one upstream model, made from the prior on first use. */
  of(model: string): ModelFigures {
    let figures = this.#models.get(model);
    if (figures === undefined) {
      figures = new ModelFigures(this.#prior);
      this.#models.set(model, figures);
    }
    return figures;
  }

  /** Every model's figures, by upstream model id. */
  get models(): ReadonlyMap<string, ModelFigures> {
    return this.#models;
  }

  /**
   * The figures that speak for the whole backend (its capacity behind a perHour price, /admin/backends, the
   * gauges): those of its most measured model; the prior alone before any.
   */
  get main(): ModelFigures {
    let main: ModelFigures | undefined;
    for (const figures of this.#models.values()) if (main === undefined || figures.prefill.samples > main.prefill.samples) main = figures;
    if (main !== undefined) return main;
    this.#unseen ??= new ModelFigures(this.#prior);
    return this.#unseen;
  }

  /** A new prior from a config reload; the samples stay. */
  reconfigure(priorTtftMs: number | undefined): void {
    this.#prior = priorTtftMs;
    this.#unseen = undefined;
    for (const figures of this.#models.values()) figures.prefill.reconfigure(priorTtftMs);
  }

  /** A request sent here (the router's started()). */
  noteSent(now: number): void {
    this.#recent = this.recentSent(now) + 1;
    this.#recentAt = now;
  }

  /** Requests sent here lately (decayed): identical backends tied on everything else take turns by it. */
  recentSent(now: number): number {
    if (this.#recentAt === 0) return 0;
    return now <= this.#recentAt ? this.#recent : this.#recent * 0.5 ** ((now - this.#recentAt) / RECENT_HALF_LIFE_MS);
  }
}
