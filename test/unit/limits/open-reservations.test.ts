import { describe, expect, it } from 'vitest';
import { OpenReservations, settleWaitMs } from '../../../src/limits/open-reservations.ts';

describe('open reservations (what shutdown waits for before Redis closes)', () => {
  it('resolves at once when none is open, when the last one settles, or at the timeout with the count left', async () => {
    const open = new OpenReservations();
    expect(await open.drained(10)).toBe(0);
    open.add();
    open.add();
    const waiting = open.drained(5_000);
    open.done();
    setTimeout(() => open.done(), 20);
    const started = performance.now();
    expect(await waiting).toBe(0);
    expect(performance.now() - started).toBeLessThan(1_000);
    open.add();
    expect(await open.drained(30)).toBe(1);
    open.done();
    expect(open.size).toBe(0);
  });

  it('waits long enough for a settle of two Redis round trips', () => {
    expect(settleWaitMs(undefined)).toBe(2_000);
    expect(settleWaitMs({ commandTimeoutMs: 300 })).toBe(2_000);
    expect(settleWaitMs({ commandTimeoutMs: 1_000 })).toBe(3_000);
  });
});
