import { describe, expect, it } from 'vitest';
import { SingleFlight } from '../../../src/cache/single-flight.ts';

describe('SingleFlight', () => {
  it('runs the loader once for 20 concurrent identical keys', async () => {
    const flight = new SingleFlight<string>();
    let calls = 0;
    const loader = async () => {
      calls++;
      await new Promise((resolve) => setTimeout(resolve, 20));
      return 'answer';
    };
    const results = await Promise.all(Array.from({ length: 20 }, () => flight.run('k', loader)));
    expect(calls).toBe(1);
    expect(results).toEqual(Array(20).fill('answer'));
    expect(flight.size).toBe(0);
    await flight.run('k', loader); // a later call runs again
    expect(calls).toBe(2);
  });

  it('shares the error and keeps different keys apart', async () => {
    const flight = new SingleFlight<number>();
    const failing = Promise.all([flight.run('bad', async () => Promise.reject(new Error('boom'))), flight.run('bad', async () => 1)]);
    await expect(failing).rejects.toThrow('boom');
    expect(await Promise.all([flight.run('a', async () => 1), flight.run('b', async () => 2)])).toEqual([1, 2]);
  });

  it('begin(): one leader, followers get its result or undefined when it fails', async () => {
    const flight = new SingleFlight<string>();
    const leader = flight.begin('k');
    const follower = flight.begin('k');
    expect(leader.role).toBe('leader');
    expect(follower.role).toBe('follower');
    if (leader.role !== 'leader' || follower.role !== 'follower') return;
    leader.complete('cached entry');
    leader.complete('ignored second call');
    expect(await follower.result).toBe('cached entry');
    const next = flight.begin('k');
    expect(next.role).toBe('leader');
    const waiting = flight.begin('k');
    if (next.role === 'leader') next.complete(undefined);
    if (waiting.role === 'follower') expect(await waiting.result).toBeUndefined();
  });
});
