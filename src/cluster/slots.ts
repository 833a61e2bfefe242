/**
 * Shared backend slots: `maxConcurrency` as the limit of the whole fleet of replicas, not of each one.
 *
 * Each backend has one sorted set in Redis, `<prefix>:slots:{<backend>}`, of lease ids scored by their expiry
 * (Redis's own clock, TIME, so replicas' clocks do not matter). A request takes a slot with one script call
 * (drop expired leases, count, add one if under the limit) and gives it back with another (remove it; when the
 * backend was full, PUBLISH its id so replicas with queued requests retry at once). Nothing happens per
 * streamed chunk. A replica renews all the leases it holds in one call per backend every third of
 * `leaseTtlMs`, so a dead replica's slots come free within `leaseTtlMs`.
 *
 * The same sets are the fleet's load view: every `loadRefreshMs` a background timer counts each backend's live
 * leases (never on a request's path); the router adds its own current count to the others' last known one.
 *
 * When Redis is unreachable (not ready, or a command fails or times out) a request takes a local slot only,
 * so the limit is per replica again until Redis answers: logged once per change, counted, and shown by
 * `switchyard_cluster_shared`.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { RedisClient } from '../redis/client.ts';
import { hashTag, redisKey } from '../redis/key.ts';
import { LuaScript } from '../redis/script.ts';

const NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)";

/** KEYS[1] slots; ARGV lease, limit, ttlMs → 1 taken, 0 full. */
const acquireScript = new LuaScript(`${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
return 1`);

/** KEYS[1] slots; ARGV lease, limit, channel, backend → 1 removed. Publishes when the backend was full. */
const releaseScript = new LuaScript(`local full = redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2])
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
if removed == 1 and full then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return removed`);

/** KEYS[1] slots; ARGV ttlMs, lease… → leases that had to be added again (lost while this replica was away). */
const renewScript = new LuaScript(`${NOW}
local added = 0
for i = 2, #ARGV do added = added + redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
return added`);

/** KEYS[1] slots → live leases. */
const countScript = new LuaScript(`${NOW}
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')`);

/** What shared slots need to know. */
export interface SharedSlotsOptions {
  redis: RedisClient;
  keyPrefix: string;
  replicaId: string;
  leaseTtlMs: number;
  loadRefreshMs: number;
  logger: Logger;
}

/** The outcome of one acquire: a lease in Redis, the backend full fleet-wide, or Redis unavailable (local slot). */
export type SlotGrant = 'leased' | 'full' | 'local';

/** A default replica id: unique per process, readable in Redis. */
export function defaultReplicaId(): string {
  return `${hostname()
    .replace(/[^A-Za-z0-9_.-]/g, '-')
    .slice(0, 40)}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

export class SharedSlots {
  readonly channel: string;
  readonly #options: SharedSlotsOptions;
  /** Lease ids this replica holds, per backend. */
  readonly #held = new Map<string, string[]>();
  readonly #limits = new Map<string, number>();
  readonly #keys = new Map<string, string>();
  #sequence = 0;
  #degraded = false;
  #renewTimer: NodeJS.Timeout | undefined;
  #loadTimer: NodeJS.Timeout | undefined;
  #loadPending = false;
  /** Counters for metrics. */
  readonly stats = { fallbacks: 0, recreated: 0, errors: 0 };
  /** Told each backend's live lease count (`total`, of which `own` this replica's) after every background read. */
  onCount: ((backendId: string, total: number, own: number, at: number) => void) | undefined;
  /** Clock time of the last complete read of every backend's count (0 = never). */
  countedAt = 0;
  /** Told a backend id whenever another replica freed a slot of a backend that was full. */
  onFreed: ((backendId: string) => void) | undefined;

  constructor(options: SharedSlotsOptions, backends: ReadonlyMap<string, number>) {
    this.#options = options;
    this.channel = redisKey(options.keyPrefix, 'cluster', 'freed');
    this.configure(backends);
  }

  /**
   * The backends and their limits (maxConcurrency), at start and after a config reload. A backend a reload
   * removed keeps its entry: the leases of the requests it still carries are renewed and released as before.
   */
  configure(backends: ReadonlyMap<string, number>): void {
    for (const [id, limit] of backends) {
      this.#limits.set(id, limit);
      if (!this.#held.has(id)) this.#held.set(id, []);
      if (!this.#keys.has(id)) this.#keys.set(id, redisKey(this.#options.keyPrefix, 'slots', hashTag(id)));
    }
  }

  /** False while Redis is unreachable and slots are per replica. */
  get shared(): boolean {
    return !this.#degraded;
  }

  /** Starts lease renewal and the load refresher (timers that do not keep the process alive). */
  start(): void {
    const renewEvery = Math.max(50, Math.floor(this.#options.leaseTtlMs / 3));
    this.#renewTimer = setInterval(() => void this.renew(), renewEvery);
    this.#renewTimer.unref();
    this.#loadTimer = setInterval(() => void this.refreshLoad(), this.#options.loadRefreshMs);
    this.#loadTimer.unref();
    void this.refreshLoad();
  }

  stop(): void {
    clearInterval(this.#renewTimer);
    clearInterval(this.#loadTimer);
  }

  /** Leases this replica holds on the backend. */
  held(backendId: string): number {
    return this.#held.get(backendId)?.length ?? 0;
  }

  /** Takes a fleet-wide slot: one round trip. Never throws. */
  async acquire(backendId: string): Promise<SlotGrant> {
    const redis = this.#options.redis;
    if (redis.status !== 'ready') return this.fallBack('redis not ready');
    const lease = `${this.#options.replicaId}:${++this.#sequence}`;
    try {
      const taken = await acquireScript.run(redis, [this.#keys.get(backendId) as string], [lease, this.#limits.get(backendId) as number, this.#options.leaseTtlMs]);
      this.recovered();
      if (taken !== 1) return 'full';
      this.#held.get(backendId)?.push(lease);
      return 'leased';
    } catch (error) {
      this.stats.errors++;
      return this.fallBack((error as Error).message);
    }
  }

  /** Gives one of this replica's leases on the backend back (fire and forget: a lost release expires). */
  release(backendId: string): void {
    const lease = this.#held.get(backendId)?.pop();
    if (lease === undefined) return;
    const redis = this.#options.redis;
    if (redis.status !== 'ready') return;
    releaseScript.run(redis, [this.#keys.get(backendId) as string], [lease, this.#limits.get(backendId) as number, this.channel, backendId]).catch(() => {
      this.stats.errors++;
    });
  }

  /** Renews every lease this replica holds (one call per backend holding some). */
  async renew(): Promise<void> {
    const redis = this.#options.redis;
    if (redis.status !== 'ready') return;
    const calls: Promise<void>[] = [];
    for (const [id, leases] of this.#held) {
      if (leases.length === 0) continue;
      calls.push(
        renewScript.run(redis, [this.#keys.get(id) as string], [this.#options.leaseTtlMs, ...leases]).then(
          (added) => {
            this.stats.recreated += Number(added);
          },
          () => {
            this.stats.errors++;
          },
        ),
      );
    }
    await Promise.all(calls);
  }

  /** Reads every backend's live lease count (background, every loadRefreshMs). */
  async refreshLoad(): Promise<void> {
    const redis = this.#options.redis;
    if (this.#loadPending || redis.status !== 'ready') return;
    this.#loadPending = true;
    try {
      let failed = false;
      await Promise.all(
        [...this.#keys].map(([id, key]) =>
          countScript.run(redis, [key], []).then(
            (count) => this.onCount?.(id, Number(count), this.held(id), Date.now()),
            () => {
              failed = true;
            },
          ),
        ),
      );
      if (!failed) this.countedAt = Date.now();
    } finally {
      this.#loadPending = false;
    }
  }

  private fallBack(why: string): SlotGrant {
    this.stats.fallbacks++;
    if (!this.#degraded) {
      this.#degraded = true;
      this.#options.logger.warn({ err: { message: why } }, 'cluster: Redis unreachable, backend slots are per replica until it answers (maxConcurrency per replica)');
    }
    return 'local';
  }

  private recovered(): void {
    if (!this.#degraded) return;
    this.#degraded = false;
    this.#options.logger.info('cluster: Redis answers again, backend slots are shared by the fleet');
  }
}
