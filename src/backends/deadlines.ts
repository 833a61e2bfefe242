/**
 * The deadlines of one upstream attempt (first byte, idle between chunks,
 * total) on a single timer. Separate from attempt.ts because it is a clock and
 * nothing else: it knows a backend's timeouts and how to abort, not undici or
 * the answer, and is tested on its own (test/unit/backends/deadlines.test.ts).
 */
import type { Backend } from './registry.ts';

type TimeoutKind = 'first-byte-timeout' | 'idle-timeout' | 'total-timeout' | 'client-stalled';

/**
 * Deadlines of one attempt: first byte, then idle between chunks, and a total.
 * One timer per attempt, and none touched per chunk: a chunk only notes its
 * time. The timer is never armed further ahead than the idle limit (data may
 * arrive meanwhile and move the idle deadline, but only later), and when it
 * wakes it either fires the deadline that passed or re-arms for the next one,
 * so every deadline fires on time at the cost of one wake-up per idle period.
 *
 * While the upstream is paused because the client is not reading (backpressure),
 * the upstream is not idle: the silence is ours. Then the idle limit measures
 * the client instead, from the moment of the pause, and what passes while
 * paused (idle or total) is `client-stalled`, never the backend's fault.
 */
export class AttemptDeadlines {
  fired: TimeoutKind | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** performance.now() of the latest chunk; -1 before the first. */
  private lastDataAt = -1;
  /** performance.now() when the upstream was paused for the client; -1 while it flows. */
  private pausedAt = -1;
  private readonly startedAt: number;
  private readonly firstByteMs: number;
  private readonly idleMs: number;
  private readonly totalAt: number;
  private readonly abort: () => void;

  constructor(backend: Backend, abort: () => void) {
    const { firstByteMs, idleMs, totalMs } = backend.config.timeouts;
    this.startedAt = performance.now();
    this.firstByteMs = firstByteMs > 0 ? firstByteMs : Number.POSITIVE_INFINITY;
    this.idleMs = idleMs > 0 ? idleMs : Number.POSITIVE_INFINITY;
    this.totalAt = totalMs > 0 ? this.startedAt + totalMs : Number.POSITIVE_INFINITY;
    this.abort = abort;
    this.arm(this.startedAt);
  }

  private arm(now: number): void {
    const pending = this.pausedAt >= 0 ? this.pausedAt + this.idleMs : this.lastDataAt < 0 ? this.startedAt + this.firstByteMs : this.lastDataAt + this.idleMs;
    const next = Math.min(pending, this.totalAt, now + this.idleMs);
    this.timer = Number.isFinite(next) ? setTimeout(checkDeadlines, Math.max(1, Math.ceil(next - now)), this) : undefined;
  }

  /** The timer woke: fire what has passed, or wait for the next deadline. */
  check(): void {
    if (this.fired || this.timer === undefined) return;
    const now = performance.now();
    if (this.pausedAt >= 0) {
      if (now >= this.totalAt || now >= this.pausedAt + this.idleMs) this.fire('client-stalled');
      else this.arm(now);
    } else if (now >= this.totalAt) this.fire('total-timeout');
    else if (this.lastDataAt < 0 ? now >= this.startedAt + this.firstByteMs : now >= this.lastDataAt + this.idleMs) {
      this.fire(this.lastDataAt < 0 ? 'first-byte-timeout' : 'idle-timeout');
    } else this.arm(now);
  }

  private fire(kind: TimeoutKind): void {
    this.fired = kind;
    this.timer = undefined;
    this.abort();
  }

  /** Call on every body chunk. */
  onData(): void {
    this.lastDataAt = performance.now();
  }

  /** The upstream was paused because the client is not reading. */
  pause(): void {
    if (this.pausedAt < 0) this.pausedAt = performance.now();
  }

  /** The client drained: the upstream flows again, and its idle time starts now. */
  resume(): void {
    if (this.pausedAt < 0) return;
    this.pausedAt = -1;
    this.lastDataAt = performance.now();
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

function checkDeadlines(deadlines: AttemptDeadlines): void {
  deadlines.check();
}
