/**
 * The load generator: undici Pool + raw dispatch handlers (no body streams,
 * no promises per chunk), so its own cost per request stays small.
 *
 * - paced (open loop): request i is due at start + i/rate, whatever happened to
 *   the earlier ones. A timer wakes up at the next due time and sends everything
 *   that is due. Each request records its scheduled time, the time it was handed
 *   to undici ("sent"), the response headers, the first body byte and the end.
 *   Latency figures are measured from the SENT time; `lag` (sent − scheduled)
 *   shows how well the pacing held, and latency from the scheduled time is kept
 *   too (it includes the driver's own lateness: the coordinated-omission-free
 *   figure).
 * - closed (saturation): `concurrency` loops, each sends its next request when
 *   the previous one ended; completions within the window count.
 */
import { performance } from 'node:perf_hooks';
import { Pool, type Dispatcher } from 'undici';

export interface RequestShape {
  path: string;
  body: Buffer;
  stream: boolean;
  /** Makes every body unique: a request counter is written as `width` ASCII digits at `offset`. */
  vary?: { offset: number; width: number };
}

/** Process-wide, so repetitions never repeat a body the gateway may have cached. */
let sequence = 0;

function bodyOf(shape: RequestShape): Buffer {
  const vary = shape.vary;
  if (vary === undefined) return shape.body;
  const body = Buffer.from(shape.body);
  body.write(String(sequence++).padStart(vary.width, '0').slice(-vary.width), vary.offset, 'latin1');
  return body;
}

/** One finished exchange (times in ms from performance.now()). */
interface Outcome {
  scheduled: number;
  sent: number;
  headers: number;
  firstByte: number;
  end: number;
  status: number;
  error: string | undefined;
  bytes: number;
  /** Streams: saw `[DONE]` at the end. */
  done: boolean;
  sample: string;
}

// With BENCH_API_KEY every target gets the key (only Switchyard with auth on reads it); read once, lazily.
let headersOnce: Record<string, string> | undefined;
function jsonHeaders(): Record<string, string> {
  headersOnce ??= process.env.BENCH_API_KEY ? { 'content-type': 'application/json', authorization: `Bearer ${process.env.BENCH_API_KEY}` } : { 'content-type': 'application/json' };
  return headersOnce;
}
const doneMarker = Buffer.from('[DONE]');

class Exchange implements Dispatcher.DispatchHandler {
  readonly outcome: Outcome;
  private tail: Buffer | undefined;
  private readonly stream: boolean;
  private readonly finish: (outcome: Outcome) => void;

  constructor(scheduled: number, stream: boolean, finish: (outcome: Outcome) => void) {
    this.outcome = { scheduled, sent: performance.now(), headers: 0, firstByte: 0, end: 0, status: 0, error: undefined, bytes: 0, done: false, sample: '' };
    this.stream = stream;
    this.finish = finish;
  }

  onRequestStart(): void {}

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    this.outcome.headers = performance.now();
    this.outcome.status = statusCode;
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const outcome = this.outcome;
    if (outcome.bytes === 0) outcome.firstByte = performance.now();
    outcome.bytes += chunk.length;
    if (outcome.status !== 200 && outcome.sample.length < 300) outcome.sample += chunk.toString('utf8', 0, 300);
    if (this.stream) this.tail = chunk.length >= 32 ? chunk : Buffer.concat([this.tail ?? Buffer.alloc(0), chunk]).subarray(-32);
  }

  onResponseEnd(): void {
    const outcome = this.outcome;
    outcome.end = performance.now();
    if (outcome.firstByte === 0) outcome.firstByte = outcome.end;
    outcome.done = this.stream ? this.tail?.subarray(-32).includes(doneMarker) === true : true;
    this.finish(outcome);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    const outcome = this.outcome;
    outcome.end = performance.now();
    outcome.error = (error as { code?: string }).code ?? error.message;
    this.finish(outcome);
  }
}

function send(pool: Pool, shape: RequestShape, scheduled: number, finish: (outcome: Outcome) => void): void {
  const exchange = new Exchange(scheduled, shape.stream, finish);
  pool.dispatch({ path: shape.path, method: 'POST', headers: jsonHeaders(), body: bodyOf(shape) }, exchange);
}

/** Errors and unexpected answers of one run. */
export interface Failures {
  total: number;
  /** e.g. {"status 502": 3, "ECONNRESET": 1, "stream without [DONE]": 2} */
  kinds: Record<string, number>;
  samples: string[];
}

function classify(failures: Failures, outcome: Outcome): boolean {
  let kind: string | undefined;
  if (outcome.error !== undefined) kind = outcome.error;
  else if (outcome.status !== 200) kind = `status ${outcome.status}`;
  else if (!outcome.done) kind = 'stream without [DONE]';
  if (kind === undefined) return true;
  failures.total++;
  failures.kinds[kind] = (failures.kinds[kind] ?? 0) + 1;
  if (failures.samples.length < 3) failures.samples.push(`${kind}: ${outcome.sample.slice(0, 300)}`);
  return false;
}

/** Sorted-sample percentile (nearest rank), NaN when empty. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))] as number;
}

function sortedOf(values: number[]): Float64Array {
  return Float64Array.from(values).sort();
}

export interface Distribution {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

function distribution(values: number[]): Distribution {
  const sorted = sortedOf(values);
  return { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted.length ? (sorted[sorted.length - 1] as number) : Number.NaN };
}

export interface PacedResult {
  rate: number;
  durationS: number;
  sent: number;
  ok: number;
  failures: Failures;
  /** Requests still unanswered after the drain timeout. */
  unfinished: number;
  maxInflight: number;
  /** End to end, from the sent time (ms). */
  latency: Distribution;
  /** End to end, from the scheduled time (ms): includes driver lateness. */
  latencyFromScheduled: Distribution;
  /** First body byte, from the sent time (ms). */
  ttfb: Distribution;
  /** sent − scheduled (ms): how well the pacing held. */
  lag: Distribution;
  achievedRate: number;
}

/** Open loop: `rate` requests per second, evenly spaced, for `durationS` seconds. */
export async function runPaced(options: {
  url: string;
  shape: RequestShape;
  rate: number;
  durationS: number;
  /** Same load before the measured part, not recorded (JIT, connections). */
  warmupS: number;
  connections: number;
  drainTimeoutMs?: number;
  onWindowStart?: () => void;
  onWindowEnd?: () => void;
}): Promise<PacedResult> {
  const pool = new Pool(options.url, { connections: options.connections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const warmup = Math.round(options.rate * options.warmupS);
  const measured = Math.max(1, Math.round(options.rate * options.durationS));
  const total = warmup + measured;
  const interval = 1000 / options.rate;
  const latency: number[] = [];
  const fromScheduled: number[] = [];
  const ttfb: number[] = [];
  const lag: number[] = [];
  const failures: Failures = { total: 0, kinds: {}, samples: [] };
  let inflight = 0;
  let maxInflight = 0;
  let finished = 0;
  let ok = 0;
  let sentMeasured = 0;
  let windowStart = 0;
  let lastSent = 0;
  let allDone: (() => void) | undefined;

  let closed = false;
  const finish = (outcome: Outcome) => {
    // Requests destroyed after the drain timeout are already counted as unfinished.
    if (closed) return;
    inflight--;
    finished++;
    if (finished === total) allDone?.();
    if (outcome.scheduled < windowStart) return;
    lag.push(outcome.sent - outcome.scheduled);
    if (classify(failures, outcome)) {
      ok++;
      latency.push(outcome.end - outcome.sent);
      fromScheduled.push(outcome.end - outcome.scheduled);
      ttfb.push(outcome.firstByte - outcome.sent);
    }
  };

  const start = performance.now() + 5;
  windowStart = start + warmup * interval - interval / 2;
  let next = 0;
  let windowStarted = false;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (next < total) {
        const due = start + next * interval;
        if (due > now) break;
        if (next === warmup && !windowStarted) {
          windowStarted = true;
          options.onWindowStart?.();
        }
        if (next >= warmup) sentMeasured++;
        inflight++;
        if (inflight > maxInflight) maxInflight = inflight;
        send(pool, options.shape, due, finish);
        next++;
      }
      if (next >= total) {
        lastSent = performance.now();
        resolve();
        return;
      }
      // Sleep until the next due time; timers have ~1 ms granularity, so
      // requests due within the same millisecond leave together.
      const wait = start + next * interval - performance.now();
      setTimeout(tick, wait > 1 ? Math.floor(wait) : 0);
    };
    setTimeout(tick, 5);
  });

  if (finished < total) {
    await new Promise<void>((resolve) => {
      allDone = resolve;
      setTimeout(resolve, options.drainTimeoutMs ?? 15_000).unref();
    });
  }
  options.onWindowEnd?.();
  const unfinished = total - finished;
  closed = true;
  await pool.destroy().catch(() => undefined);
  const elapsed = (lastSent - windowStart) / 1000 + interval / 2000;
  return {
    rate: options.rate,
    durationS: options.durationS,
    sent: sentMeasured,
    ok,
    failures,
    unfinished,
    maxInflight,
    latency: distribution(latency),
    latencyFromScheduled: distribution(fromScheduled),
    ttfb: distribution(ttfb),
    lag: distribution(lag),
    achievedRate: sentMeasured / elapsed,
  };
}

export interface ClosedResult {
  concurrency: number;
  windowS: number;
  /** Requests that ended inside the window. */
  completed: number;
  ok: number;
  failures: Failures;
  /** ok / window. */
  throughput: number;
  latency: Distribution;
}

/**
 * Closed loop: `concurrency` requests always in flight. After `warmupS`
 * seconds of the same load the window of `durationS` seconds starts;
 * `onWindowStart`/`onWindowEnd` run exactly at its edges (the caller reads
 * process CPU there) and only requests ending inside it count. Requests still
 * in flight at the end are awaited but not counted.
 */
export async function runClosed(options: {
  url: string;
  shape: RequestShape;
  concurrency: number;
  durationS: number;
  warmupS: number;
  onWindowStart?: () => void;
  onWindowEnd?: () => void;
}): Promise<ClosedResult> {
  const pool = new Pool(options.url, { connections: options.concurrency, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const failures: Failures = { total: 0, kinds: {}, samples: [] };
  const latency: number[] = [];
  let running = true;
  let measuring = false;
  let completed = 0;
  let ok = 0;
  let inflight = 0;
  let drained: (() => void) | undefined;

  const finish = (outcome: Outcome) => {
    inflight--;
    if (measuring) {
      completed++;
      if (classify(failures, outcome)) {
        ok++;
        latency.push(outcome.end - outcome.sent);
      }
    }
    if (running) {
      inflight++;
      send(pool, options.shape, performance.now(), finish);
    } else if (inflight === 0) drained?.();
  };

  for (let i = 0; i < options.concurrency; i++) {
    inflight++;
    send(pool, options.shape, performance.now(), finish);
  }
  await new Promise<void>((resolve) => setTimeout(resolve, options.warmupS * 1000));
  options.onWindowStart?.();
  measuring = true;
  const start = performance.now();
  await new Promise<void>((resolve) => setTimeout(resolve, options.durationS * 1000));
  measuring = false;
  running = false;
  const windowS = (performance.now() - start) / 1000;
  options.onWindowEnd?.();
  if (inflight > 0) {
    await new Promise<void>((resolve) => {
      drained = resolve;
      setTimeout(resolve, 15_000).unref();
    });
  }
  await pool.destroy().catch(() => undefined);
  return {
    concurrency: options.concurrency,
    windowS,
    completed,
    ok,
    failures,
    throughput: ok / windowS,
    latency: distribution(latency),
  };
}
