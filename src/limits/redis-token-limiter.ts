/**
 * Tokens per minute on Redis, shared by every replica. Keys
 * `prefix:tpm:{subject}:<bucket>` (the subject is the Cluster hash tag, so
 * both buckets of a key share a slot); reserve and settle are atomic Lua.
 */
import type { RedisClient } from '../redis/client.ts';
import { hashTag, redisKey } from '../redis/key.ts';
import { LuaScript } from '../redis/script.ts';
import type { RedisFailurePolicy } from './redis-policy.ts';
import type { Reservation, TokenDecision, TokenLimiter } from './token-window.ts';
import { decision, degradedDecision, tokenWindowMs, windowPosition } from './token-window.ts';

// KEYS: current bucket, previous bucket. ARGV: limit, tokens, ms left in the bucket, window ms, ttl ms.
// Integer form of: previous × left / window + current + tokens <= limit.
const reserveScript = new LuaScript(`
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
local limit = tonumber(ARGV[1])
local tokens = tonumber(ARGV[2])
local window = tonumber(ARGV[4])
if tokens > 0 then
  if previous * tonumber(ARGV[3]) + (current + tokens) * window > limit * window then
    return {0, current, previous}
  end
  current = redis.call('INCRBY', KEYS[1], tokens)
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
return {1, current, previous}
`);

// KEYS: the bucket. ARGV: delta, ttl ms. Never below 0; a missing bucket is not recreated to free tokens.
const settleScript = new LuaScript(`
local value = tonumber(redis.call('GET', KEYS[1]) or '0')
local next = value + tonumber(ARGV[1])
if next < 0 then next = 0 end
if next == value then return value end
redis.call('SET', KEYS[1], next, 'PX', ARGV[2])
return next
`);

/** Redis sliding-window token limiter. */
export class RedisTokenLimiter implements TokenLimiter {
  private readonly redis: RedisClient;
  private readonly keyPrefix: string;
  private readonly policy: RedisFailurePolicy;
  private readonly now: () => number;
  private readonly windowMs: number;

  constructor(redis: RedisClient, options: { keyPrefix: string; policy: RedisFailurePolicy; now?: () => number; windowMs?: number }) {
    this.redis = redis;
    this.keyPrefix = options.keyPrefix;
    this.policy = options.policy;
    this.now = options.now ?? Date.now;
    this.windowMs = options.windowMs ?? tokenWindowMs;
  }

  private bucketKey(subject: string, bucket: number): string {
    return redisKey(this.keyPrefix, 'tpm', hashTag(subject), bucket);
  }

  /** Buckets live until the end of the following bucket, plus slack for clock skew. */
  private ttl(bucket: number, now: number): number {
    return (bucket + 2) * this.windowMs - now + 5_000;
  }

  async reserve(subject: string, limit: number, tokens: number): Promise<TokenDecision> {
    const now = this.now();
    const { bucket, elapsed } = windowPosition(now, this.windowMs);
    let reply: unknown;
    try {
      reply = await reserveScript.run(
        this.redis,
        [this.bucketKey(subject, bucket), this.bucketKey(subject, bucket - 1)],
        [limit, Math.max(0, Math.round(tokens)), this.windowMs - elapsed, this.windowMs, this.ttl(bucket, now)],
      );
    } catch (error) {
      this.policy.checkFailed('tokens', error);
      return degradedDecision(limit);
    }
    const [allowed, current, previous] = (reply as Array<number | string>).map(Number);
    return decision(subject, bucket, elapsed, limit, Math.round(tokens), allowed === 1, { current: current ?? 0, previous: previous ?? 0 }, this.windowMs);
  }

  async settle(reservation: Reservation | undefined, actualTokens: number): Promise<void> {
    if (!reservation || reservation.settled) return;
    reservation.settled = true;
    const delta = Math.max(0, Math.round(actualTokens)) - reservation.tokens;
    if (delta === 0) return;
    const now = this.now();
    const { bucket } = windowPosition(now, this.windowMs);
    let target: number;
    if (reservation.bucket >= bucket - 1) target = reservation.bucket;
    else if (delta > 0) target = bucket;
    else return;
    try {
      await settleScript.run(this.redis, [this.bucketKey(reservation.subject, target)], [delta, this.ttl(target, now)]);
    } catch (error) {
      this.policy.settleFailed('tokens', error);
    }
  }
}
