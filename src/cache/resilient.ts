/**
 * Makes any cache store safe for the hot path: a failing or slow store is a
 * miss on read and a skipped write, never an error for the request. Every
 * such event is counted (callback, for metrics) and logged, at most once per
 * `logEveryMs` per operation, with the error message only (no prompt text;
 * keys are hashes).
 */
import type { Logger } from 'pino';
import type { CacheEntry } from './entry.ts';
import type { CacheStore } from './store.ts';

/** Why a cache operation was skipped. */
export type CacheFailure = 'error' | 'timeout';

/** Options of ResilientCache. */
export interface ResilientCacheOptions {
  /** A read or write slower than this is abandoned. */
  timeoutMs: number;
  logger: Logger;
  /** Called on every failure, e.g. to increment `switchyard_cache_errors_total{operation,reason}`. */
  onFailure?: (operation: 'get' | 'set', reason: CacheFailure) => void;
  logEveryMs?: number;
}

class TimeoutError extends Error {}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  promise.catch(() => undefined); // a late failure after the timeout is not unhandled
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A CacheStore whose get/set never throw and never take longer than `timeoutMs`. */
export class ResilientCache implements CacheStore {
  private readonly store: CacheStore;
  private readonly options: ResilientCacheOptions;
  private readonly lastLog = new Map<string, { at: number; suppressed: number }>();

  constructor(store: CacheStore, options: ResilientCacheOptions) {
    this.store = store;
    this.options = options;
  }

  /** A store in process memory needs no timer and race around every call. */
  private guarded<T>(operation: Promise<T>): Promise<T> {
    return this.store.local ? operation : withTimeout(operation, this.options.timeoutMs);
  }

  async get(key: string): Promise<CacheEntry | undefined> {
    try {
      return await this.guarded(this.store.get(key));
    } catch (error) {
      this.failed('get', error);
      return undefined;
    }
  }

  async set(key: string, entry: CacheEntry, ttlSeconds: number): Promise<boolean> {
    try {
      return await this.guarded(this.store.set(key, entry, ttlSeconds));
    } catch (error) {
      this.failed('set', error);
      return false;
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.guarded(this.store.delete(key));
    } catch (error) {
      this.failed('set', error);
    }
  }

  private failed(operation: 'get' | 'set', error: unknown): void {
    const reason: CacheFailure = error instanceof TimeoutError ? 'timeout' : 'error';
    this.options.onFailure?.(operation, reason);
    const now = Date.now();
    const key = `${operation}:${reason}`;
    const last = this.lastLog.get(key);
    if (last && now - last.at < (this.options.logEveryMs ?? 10_000)) {
      last.suppressed++;
      return;
    }
    this.lastLog.set(key, { at: now, suppressed: 0 });
    this.options.logger.warn(
      { cache: { operation, reason, suppressed: last?.suppressed ?? 0 }, err: { message: (error as Error).message } },
      `response cache ${operation} skipped (${reason}); the request goes on without the cache`,
    );
  }
}
