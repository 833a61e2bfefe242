/**
 * Cross-replica single flight for identical cacheable requests. The replica that first takes the lock
 * `<prefix>:flight:{<cache key>}` (SET NX PX) goes upstream; it renews the lock while it runs, writes the answer
 * to the shared cache, then deletes the lock and PUBLISHes the key. Replicas that find the lock taken wait for
 * that message (or for the lock to vanish, checked every `pollMs`, which covers a dead leader whose lock
 * expired and a lost message), at most `flightWaitMs`, then read the cache: a hit is served (a stream is
 * replayed from the entry, as for in-process followers), a miss (the leader failed or died) goes upstream.
 * Redis unreachable: no lock is tried and single flight is per replica.
 */
import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../redis/client.ts';
import { hashTag, redisKey } from '../redis/key.ts';
import { LuaScript } from '../redis/script.ts';

/** KEYS[1] lock; ARGV token, ttl → 1 when still ours. */
const renewScript = new LuaScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`);

/** KEYS[1] lock; ARGV token, channel, key → deletes the lock when ours and tells the followers. */
const doneScript = new LuaScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1`);

export interface ClusterFlightOptions {
  redis: RedisClient;
  keyPrefix: string;
  lockMs: number;
  waitMs: number;
  pollMs: number;
}

/** This replica's part in a cross-replica flight. */
export type ClusterFlight =
  | {
      role: 'leader';
      /** Call once the answer is in the cache (or the request failed): frees the lock and wakes the followers. */
      done(): void;
    }
  | {
      role: 'follower';
      /** Resolves once the leader is done, gone, or `flightWaitMs` passed: then read the cache. */
      settled: Promise<void>;
    };

export class ClusterFlights {
  readonly channel: string;
  readonly #options: ClusterFlightOptions;
  readonly #waiting = new Map<string, Set<() => void>>();
  /** Counters for metrics: flights led, followed, and followers that found no answer. */
  readonly stats = { led: 0, followed: 0, errors: 0 };

  constructor(options: ClusterFlightOptions) {
    this.#options = options;
    this.channel = redisKey(options.keyPrefix, 'cluster', 'flight');
  }

  /** The lock is tried with one SET NX; undefined when Redis is unavailable (per-replica single flight). Never throws. */
  async begin(key: string): Promise<ClusterFlight | undefined> {
    const redis = this.#options.redis;
    if (redis.status !== 'ready') return undefined;
    const lock = redisKey(this.#options.keyPrefix, 'flight', hashTag(key));
    const token = randomBytes(9).toString('base64url');
    let taken: string | null;
    try {
      taken = await redis.set(lock, token, 'PX', this.#options.lockMs, 'NX');
    } catch {
      this.stats.errors++;
      return undefined;
    }
    if (taken === 'OK') {
      this.stats.led++;
      return this.leader(lock, token, key);
    }
    this.stats.followed++;
    return { role: 'follower', settled: this.follow(lock, key) };
  }

  /** A message on the flight channel: wakes this replica's followers of that key. */
  notify(key: string): void {
    const waiters = this.#waiting.get(key);
    if (!waiters) return;
    this.#waiting.delete(key);
    for (const wake of waiters) wake();
  }

  private leader(lock: string, token: string, key: string): ClusterFlight {
    const { redis, lockMs, waitMs } = this.#options;
    const started = Date.now();
    const renew = setInterval(
      () => {
        // A leader that somehow never finishes stops holding followers after flightWaitMs.
        if (Date.now() - started > waitMs) clearInterval(renew);
        else renewScript.run(redis, [lock], [token, lockMs]).catch(() => undefined);
      },
      Math.max(50, Math.floor(lockMs / 3)),
    );
    renew.unref();
    let finished = false;
    return {
      role: 'leader',
      done: () => {
        if (finished) return;
        finished = true;
        clearInterval(renew);
        if (redis.status !== 'ready') return; // the lock expires; followers notice it gone
        doneScript.run(redis, [lock], [token, this.channel, key]).catch(() => {
          this.stats.errors++;
        });
      },
    };
  }

  private follow(lock: string, key: string): Promise<void> {
    const { redis, waitMs, pollMs } = this.#options;
    return new Promise<void>((resolve) => {
      let waiters = this.#waiting.get(key);
      if (!waiters) {
        waiters = new Set();
        this.#waiting.set(key, waiters);
      }
      const set = waiters;
      const finish = () => {
        clearTimeout(deadline);
        clearInterval(poll);
        set.delete(finish);
        if (set.size === 0 && this.#waiting.get(key) === set) this.#waiting.delete(key);
        resolve();
      };
      set.add(finish);
      const deadline = setTimeout(finish, waitMs);
      // The lock gone without a message: the leader died (expiry) or the message was lost.
      const poll = setInterval(
        () => {
          redis.exists(lock).then(
            (exists) => {
              if (exists === 0) finish();
            },
            () => finish(),
          );
        },
        Math.max(pollMs, 100),
      );
    });
  }
}
