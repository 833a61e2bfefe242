/**
 * Tokens per minute: the interface and the window arithmetic both stores share.
 *
 * Sliding window, approximated with two fixed one-minute buckets (as
 * Cloudflare and others do): used = previous × (share of the previous minute
 * still inside the last 60 s) + current. It has no burst of twice the limit
 * at a minute boundary, needs two counters per key, and settles cheaply.
 *
 * A reservation (estimated prompt + max_tokens) is added to the current
 * bucket when `used + tokens <= limit`; `settle` later adds `actual -
 * reserved` (negative frees tokens) to the bucket it was taken from while
 * that bucket still counts, else a positive excess goes to the current one.
 * Time is the gateway's clock (replicas need NTP-synced clocks, as usual).
 */
import { gatewayError, type GatewayError } from '../errors.ts';

export const tokenWindowMs = 60_000;

/** A reservation to settle after the call. */
export interface Reservation {
  subject: string;
  bucket: number;
  tokens: number;
  settled: boolean;
}

/** The answer to a reservation, with what the `x-ratelimit-*-tokens` headers need. */
export interface TokenDecision {
  allowed: boolean;
  limit: number;
  /** Tokens left in the window after this reservation. */
  remaining: number;
  /** ms until the window is fully replenished (x-ratelimit-reset-tokens). */
  resetMs: number;
  /** When refused: ms until this request would fit (retry-after-ms); 0 when allowed. */
  retryAfterMs: number;
  /** The request alone needs more than the limit: it can never pass (do not tell the client to retry). */
  tooLarge: boolean;
  /** Present when allowed (and Redis answered): settle it after the call. */
  reservation: Reservation | undefined;
  /** Redis failed and onRedisError: open let it through. */
  degraded: boolean;
}

/** Token limiter per subject (API key id). */
export interface TokenLimiter {
  /** Reserves `tokens` against `limit` per minute for `subject`. */
  reserve(subject: string, limit: number, tokens: number): Promise<TokenDecision>;
  /**
   * Settles with the tokens really used (prompt + completion from usage; for a
   * cancelled stream what was produced, or leave the reservation as it is by
   * passing `reservation.tokens`; 0 when the upstream did no work). Once only;
   * never throws.
   */
  settle(reservation: Reservation | undefined, actualTokens: number): Promise<void>;
}

/** Two bucket counters. */
export interface BucketCounts {
  current: number;
  previous: number;
}

/** The bucket number and ms elapsed in it. */
export function windowPosition(now: number, windowMs = tokenWindowMs): { bucket: number; elapsed: number } {
  const bucket = Math.floor(now / windowMs);
  return { bucket, elapsed: now - bucket * windowMs };
}

/** Sliding-window usage. */
export function usedTokens(counts: BucketCounts, elapsed: number, windowMs = tokenWindowMs): number {
  return (counts.previous * (windowMs - elapsed)) / windowMs + counts.current;
}

/** True when `tokens` fit (integer arithmetic, as the Lua script does). */
export function fits(counts: BucketCounts, elapsed: number, limit: number, tokens: number, windowMs = tokenWindowMs): boolean {
  if (tokens <= 0) return true;
  return counts.previous * (windowMs - elapsed) + counts.current * windowMs + tokens * windowMs <= limit * windowMs;
}

/** ms from now until `tokens` would fit, assuming no other traffic; Infinity when never. */
export function waitForFit(counts: BucketCounts, elapsed: number, limit: number, tokens: number, windowMs = tokenWindowMs): number {
  if (fits(counts, elapsed, limit, tokens, windowMs)) return 0;
  if (tokens > limit) return Number.POSITIVE_INFINITY;
  const left = windowMs - elapsed;
  // Still in this bucket: previous decays, current stays.
  const room = limit - counts.current - tokens;
  if (room >= 0 && counts.previous > 0) {
    const wait = left - (room * windowMs) / counts.previous;
    if (wait >= 0 && wait < left) return Math.ceil(wait);
  }
  // In the next bucket: current becomes previous and decays.
  const nextRoom = limit - tokens;
  if (counts.current <= 0) return Math.ceil(left);
  const into = windowMs - (nextRoom * windowMs) / counts.current;
  return Math.ceil(left + Math.max(0, into));
}

/** ms until nothing counts any more. */
export function resetAfter(counts: BucketCounts, elapsed: number, windowMs = tokenWindowMs): number {
  if (counts.current > 0) return 2 * windowMs - elapsed;
  if (counts.previous > 0) return windowMs - elapsed;
  return 0;
}

/** Builds the decision from the counts after (allowed) or without (refused) the reservation. */
export function decision(
  subject: string,
  bucket: number,
  elapsed: number,
  limit: number,
  tokens: number,
  allowed: boolean,
  counts: BucketCounts,
  windowMs = tokenWindowMs,
): TokenDecision {
  const remaining = Math.max(0, Math.floor(limit - usedTokens(counts, elapsed, windowMs) + 1e-9));
  const wait = allowed ? 0 : waitForFit(counts, elapsed, limit, tokens, windowMs);
  const resetMs = resetAfter(counts, elapsed, windowMs);
  return {
    allowed,
    limit,
    remaining,
    resetMs,
    retryAfterMs: allowed ? 0 : Number.isFinite(wait) ? Math.max(1, wait) : resetMs,
    tooLarge: !allowed && !Number.isFinite(wait),
    reservation: allowed && tokens > 0 ? { subject, bucket, tokens, settled: false } : undefined,
    degraded: false,
  };
}

/** The decision when Redis failed and the policy is open. */
export function degradedDecision(limit: number): TokenDecision {
  return { allowed: true, limit, remaining: limit, resetMs: 0, retryAfterMs: 0, tooLarge: false, reservation: undefined, degraded: true };
}

/** The 429 rate_limit_exceeded for a refused reservation. */
export function tokenLimitError(refused: TokenDecision, requested: number): GatewayError {
  if (refused.tooLarge) {
    return gatewayError('SWY_ERR_RATE_LIMIT_TOKENS', {
      message: `Request too large: it may use ${requested} tokens (prompt estimate + max_tokens), the limit of this API key is ${refused.limit} tokens per minute. Lower max_tokens or shorten the prompt.`,
      retryAfterSeconds: Math.max(1, Math.ceil(refused.retryAfterMs / 1000)),
    });
  }
  return gatewayError('SWY_ERR_RATE_LIMIT_TOKENS', {
    message: `Rate limit reached for tokens per minute: limit ${refused.limit}, remaining ${refused.remaining}, requested ${requested}. Retry in ${Math.max(1, Math.ceil(refused.retryAfterMs / 1000))} s, or lower max_tokens.`,
    retryAfterSeconds: Math.max(1, Math.ceil(refused.retryAfterMs / 1000)),
  });
}
