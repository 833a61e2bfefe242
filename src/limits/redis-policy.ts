/**
 * What a Redis-backed limiter does when Redis fails (`limits.onRedisError`):
 * `open` lets the request through and counts the error; `closed` refuses it
 * with 503 limits_unavailable. Either way the failure is counted and logged
 * (throttled). Settling after a call never throws in either mode.
 */
import type { Logger } from 'pino';
import { gatewayError } from '../errors.ts';

/** Which limiter failed. */
export type LimiterName = 'keys' | 'requests' | 'tokens' | 'budget';

/** Options of the failure policy. */
export interface RedisFailurePolicyOptions {
  mode: 'open' | 'closed';
  logger?: Logger | undefined;
  /** Called on every failure, e.g. for `switchyard_redis_errors_total{limiter,operation}`. */
  onError?: ((limiter: LimiterName, operation: 'check' | 'settle', error: unknown) => void) | undefined;
  logEveryMs?: number;
}

/** Turns a Redis failure into allow (open) or a 503 (closed). */
export class RedisFailurePolicy {
  readonly mode: 'open' | 'closed';
  private readonly options: RedisFailurePolicyOptions;
  private lastLogAt = 0;
  private suppressed = 0;

  constructor(options: RedisFailurePolicyOptions) {
    this.mode = options.mode;
    this.options = options;
  }

  /** A check failed: returns (open) so the caller allows, or throws the 503 (closed). */
  checkFailed(limiter: LimiterName, error: unknown): void {
    this.record(limiter, 'check', error);
    if (this.mode === 'closed') throw gatewayError('SWY_ERR_LIMITS_UNAVAILABLE', { cause: error, retryAfterSeconds: 1 });
  }

  /** A settle/charge after the call failed: counted and logged, never thrown. */
  settleFailed(limiter: LimiterName, error: unknown): void {
    this.record(limiter, 'settle', error);
  }

  private record(limiter: LimiterName, operation: 'check' | 'settle', error: unknown): void {
    this.options.onError?.(limiter, operation, error);
    const now = Date.now();
    if (now - this.lastLogAt < (this.options.logEveryMs ?? 10_000)) {
      this.suppressed++;
      return;
    }
    this.options.logger?.warn(
      { limits: { limiter, operation, onRedisError: this.mode, suppressed: this.suppressed }, err: { message: (error as Error).message } },
      this.mode === 'open' ? 'limits: Redis failed, request allowed (onRedisError: open)' : 'limits: Redis failed, request refused (onRedisError: closed)',
    );
    this.lastLogAt = now;
    this.suppressed = 0;
  }
}
