import { describe, expect, it } from 'vitest';
import { SlotScheduler, type SlotWaiter } from '../../../src/sim/scheduler.ts';

function waiter(log: Array<[string, number]>, name: string): SlotWaiter {
  return { queued: false, grant: (slot) => log.push([name, slot]) };
}

describe('slot scheduler', () => {
  it('grants free slots at once, lowest id first, then queues in FIFO order', () => {
    const scheduler = new SlotScheduler(2);
    const log: Array<[string, number]> = [];
    for (const name of ['a', 'b', 'c', 'd']) scheduler.acquire(waiter(log, name));
    expect(log).toEqual([
      ['a', 0],
      ['b', 1],
    ]);
    expect([scheduler.running, scheduler.waiting]).toEqual([2, 2]);
    scheduler.release(1);
    expect(log.at(-1)).toEqual(['c', 1]);
    scheduler.release(0);
    expect(log.at(-1)).toEqual(['d', 0]);
    expect([scheduler.running, scheduler.waiting]).toEqual([2, 0]);
  });

  it('skips cancelled waiters and counts them out of the queue at once', () => {
    const scheduler = new SlotScheduler(1);
    const log: Array<[string, number]> = [];
    scheduler.acquire(waiter(log, 'a'));
    const b = waiter(log, 'b');
    scheduler.acquire(b);
    scheduler.acquire(waiter(log, 'c'));
    scheduler.cancel(b);
    expect(scheduler.waiting).toBe(1);
    scheduler.release(0);
    expect(log.map(([name]) => name)).toEqual(['a', 'c']);
  });

  it('grows and shrinks live', () => {
    const scheduler = new SlotScheduler(1);
    const log: Array<[string, number]> = [];
    for (const name of ['a', 'b', 'c']) scheduler.acquire(waiter(log, name));
    scheduler.resize(3);
    expect(log.map(([name]) => name)).toEqual(['a', 'b', 'c']);
    scheduler.resize(1);
    scheduler.acquire(waiter(log, 'd'));
    scheduler.release(2);
    scheduler.release(1);
    expect(scheduler.waiting).toBe(1);
    scheduler.release(0);
    expect(log.at(-1)).toEqual(['d', 0]);
  });
});
