/**
 * The gateway's own latency observations per backend and model: EWMA of time
 * to first token and time per output token, plus a throughput estimate for
 * turning a per-hour cost into a per-token one.
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

/**
 * Time after which latency figures count as unknown again, so a backend that
 * got no traffic is tried afresh rather than judged on old numbers forever.
 */
export const latencyMemoryMs = 30_000;

/** TTFT and TPOT EWMAs for one backend (overall and per served model). */
export class LatencyStats {
  readonly ttft = new Ewma();
  readonly tpot = new Ewma();
  /** Clock time of the last observation (0 = never). */
  lastSampleAt = 0;
  private readonly perModel = new Map<string, { ttft: Ewma; tpot: Ewma }>();
  /** Highest number of requests seen in flight at once recently (decays). */
  peakConcurrency = 1;

  /** Records a finished request: `ttftMs` from send to first byte, `tpotMs` when it streamed several tokens. */
  observe(model: string, ttftMs: number | undefined, tpotMs: number | undefined, now: number = Date.now()): void {
    if (this.lastSampleAt !== 0 && now - this.lastSampleAt > latencyMemoryMs) this.forget();
    this.lastSampleAt = now;
    let entry = this.perModel.get(model);
    if (!entry) {
      entry = { ttft: new Ewma(), tpot: new Ewma() };
      if (this.perModel.size < 64) this.perModel.set(model, entry); // bounded: models come from config
    }
    if (ttftMs !== undefined) {
      this.ttft.update(ttftMs);
      entry.ttft.update(ttftMs);
    }
    if (tpotMs !== undefined && tpotMs > 0) {
      this.tpot.update(tpotMs);
      entry.tpot.update(tpotMs);
    }
  }

  /** True when the figures are recent enough to route on. */
  fresh(now: number): boolean {
    return this.lastSampleAt !== 0 && now - this.lastSampleAt <= latencyMemoryMs;
  }

  private forget(): void {
    this.ttft.value = undefined;
    this.tpot.value = undefined;
    this.perModel.clear();
  }

  /** Notes the in-flight count when a request starts, for the throughput estimate. */
  noteConcurrency(inflight: number): void {
    this.peakConcurrency = Math.max(inflight, this.peakConcurrency * 0.999);
  }

  ttftFor(model: string): number | undefined {
    return this.perModel.get(model)?.ttft.value ?? this.ttft.value;
  }

  tpotFor(model: string): number | undefined {
    return this.perModel.get(model)?.tpot.value ?? this.tpot.value;
  }

  /**
   * Output tokens per second the backend sustains: one stream's rate (1000 / TPOT)
   * times the concurrency it has been seen to carry. Undefined before any TPOT sample.
   */
  throughput(): number | undefined {
    const tpot = this.tpot.value;
    if (tpot === undefined || tpot <= 0) return undefined;
    return (1000 / tpot) * Math.max(1, this.peakConcurrency);
  }
}
