import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { CacheEntry } from '../../../src/cache/entry.ts';
import { ResilientCache } from '../../../src/cache/resilient.ts';
import type { CacheStore } from '../../../src/cache/store.ts';

function capture(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString());
      callback();
    },
  });
  return { logger: pino({ level: 'warn' }, sink), lines };
}

const entry: CacheEntry = { kind: 'chat', body: '{"secret":"prompt text"}', usage: undefined, createdAt: 0 };

describe('ResilientCache', () => {
  it('turns a failing store into misses and skipped writes, counted and logged', async () => {
    const broken: CacheStore = {
      get: async () => Promise.reject(new Error('connection refused')),
      set: async () => Promise.reject(new Error('connection refused')),
      delete: async () => Promise.reject(new Error('connection refused')),
    };
    const { logger, lines } = capture();
    const failures: string[] = [];
    const cache = new ResilientCache(broken, { timeoutMs: 50, logger, onFailure: (operation, reason) => failures.push(`${operation}:${reason}`) });
    expect(await cache.get('k')).toBeUndefined();
    expect(await cache.get('k')).toBeUndefined();
    expect(await cache.set('k', entry, 60)).toBe(false);
    expect(failures).toEqual(['get:error', 'get:error', 'set:error']);
    expect(lines.length).toBe(2); // the second get failure is throttled
    expect(lines.join('')).toContain('connection refused');
    expect(lines.join('')).not.toContain('prompt text');
  });

  it('gives up on a slow store after timeoutMs', async () => {
    const slow: CacheStore = {
      get: () => new Promise((resolve) => setTimeout(() => resolve(entry), 1_000)),
      set: () => new Promise((resolve) => setTimeout(() => resolve(true), 1_000)),
      delete: async () => undefined,
    };
    const failures: string[] = [];
    const cache = new ResilientCache(slow, { timeoutMs: 30, logger: capture().logger, onFailure: (operation, reason) => failures.push(`${operation}:${reason}`) });
    const started = performance.now();
    expect(await cache.get('k')).toBeUndefined();
    expect(await cache.set('k', entry, 60)).toBe(false);
    expect(performance.now() - started).toBeLessThan(300);
    expect(failures).toEqual(['get:timeout', 'set:timeout']);
  });
});
