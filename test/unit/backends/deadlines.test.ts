import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AttemptDeadlines } from '../../../src/backends/attempt.ts';
import type { Backend } from '../../../src/backends/registry.ts';

function backendWith(timeouts: { firstByteMs: number; idleMs: number; totalMs: number }): Backend {
  return { config: { timeouts: { connectMs: 1000, ...timeouts } } } as unknown as Backend;
}

describe('attempt deadlines (one timer, nothing per chunk)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function start(timeouts: { firstByteMs: number; idleMs: number; totalMs: number }) {
    const aborted: number[] = [];
    const deadlines = new AttemptDeadlines(backendWith(timeouts), () => aborted.push(performance.now()));
    return { deadlines, aborted };
  }

  it('fires first-byte when nothing arrives, even when the idle limit is shorter', () => {
    const { deadlines, aborted } = start({ firstByteMs: 1000, idleMs: 100, totalMs: 0 });
    vi.advanceTimersByTime(999);
    expect(deadlines.fired).toBeUndefined();
    vi.advanceTimersByTime(2);
    expect(deadlines.fired).toBe('first-byte-timeout');
    expect(aborted).toHaveLength(1);
  });

  it('fires idle at the idle limit after the last chunk, long before the first-byte limit', () => {
    const { deadlines, aborted } = start({ firstByteMs: 10_000, idleMs: 100, totalMs: 0 });
    vi.advanceTimersByTime(50);
    deadlines.onData();
    vi.advanceTimersByTime(90);
    deadlines.onData(); // t = 140: the idle deadline moves to 240
    vi.advanceTimersByTime(99);
    expect(deadlines.fired).toBeUndefined();
    vi.advanceTimersByTime(2);
    expect(deadlines.fired).toBe('idle-timeout');
    expect(aborted[0]).toBeGreaterThanOrEqual(240);
    expect(aborted[0]).toBeLessThanOrEqual(242);
  });

  it('fires total on a stream that never goes silent', () => {
    const { deadlines } = start({ firstByteMs: 1000, idleMs: 100, totalMs: 300 });
    for (let chunk = 0; chunk < 5; chunk++) {
      vi.advanceTimersByTime(50);
      deadlines.onData(); // t = 50 … 250
    }
    vi.advanceTimersByTime(49);
    expect(deadlines.fired).toBeUndefined();
    vi.advanceTimersByTime(2);
    expect(deadlines.fired).toBe('total-timeout');
  });

  it('fires nothing once cleared, and arms nothing when every limit is off', () => {
    const { deadlines, aborted } = start({ firstByteMs: 100, idleMs: 100, totalMs: 100 });
    deadlines.clear();
    vi.advanceTimersByTime(1000);
    expect(aborted).toHaveLength(0);
    start({ firstByteMs: 0, idleMs: 0, totalMs: 0 });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('does not count time the upstream is paused for the client as upstream idleness', () => {
    const { deadlines } = start({ firstByteMs: 10_000, idleMs: 100, totalMs: 0 });
    vi.advanceTimersByTime(10);
    deadlines.onData();
    deadlines.pause(); // t = 10: the client stopped reading
    vi.advanceTimersByTime(60);
    deadlines.resume(); // t = 70: it drained; the upstream's idle time starts now
    vi.advanceTimersByTime(99);
    expect(deadlines.fired).toBeUndefined(); // t = 169: 159 ms since the last chunk, 99 since the resume
    vi.advanceTimersByTime(2);
    expect(deadlines.fired).toBe('idle-timeout');
  });

  it('blames a client that reads nothing for the idle limit, and the total limit passing while paused too', () => {
    const stalled = start({ firstByteMs: 10_000, idleMs: 100, totalMs: 0 });
    vi.advanceTimersByTime(10);
    stalled.deadlines.onData();
    vi.advanceTimersByTime(50);
    stalled.deadlines.pause(); // t = 60
    vi.advanceTimersByTime(99);
    expect(stalled.deadlines.fired).toBeUndefined();
    vi.advanceTimersByTime(2);
    expect(stalled.deadlines.fired).toBe('client-stalled');
    expect(stalled.aborted).toHaveLength(1);

    const total = start({ firstByteMs: 10_000, idleMs: 100, totalMs: 150 });
    vi.advanceTimersByTime(10);
    total.deadlines.onData();
    total.deadlines.pause();
    vi.advanceTimersByTime(145);
    expect(total.deadlines.fired).toBe('client-stalled');
  });
});
