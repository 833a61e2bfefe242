/**
 * Shared backend slots: `maxConcurrency` as the limit of the whole fleet of replicas, not of each one.
 *
 * Each backend has one sorted set in Redis, `<prefix>:slots:{<backend>}`, of lease ids scored by their expiry
 * (Redis's own clock, TIME, so replicas' clocks do not matter). A request takes a slot with one script call
 * (drop expired leases, count, add one if under the limit) and gives it back with another (remove it; when the
 * backend was full, PUBLISH its id so replicas with queued requests retry at once), unless it keeps it as a spare
 * (below). Nothing happens per streamed chunk. A replica renews all the leases it holds in one call per backend
 * every third of `leaseTtlMs`, so a dead replica's slots come free within `leaseTtlMs`.
 *
 * Spare leases: most requests make no round trip at all. When a request ends and the backend is far from its
 * limit fleet-wide, this replica keeps its lease as a spare for the backend instead of releasing it, and the next
 * request to that backend here takes the spare without calling Redis. "Far" is judged on the background count
 * below: the other replicas' leases as last read plus this replica's own now (spares included: they are in Redis)
 * stay below half the limit, and a replica keeps at most MAX_SPARES per backend. A spare stays a live lease in the
 * set, renewed with the held ones, so every running request holds a real lease in Redis, one the acquire script
 * admitted under the limit: no overshoot, by construction, however stale the count is (a spare only changes which
 * request of this replica uses an admitted lease, and a spare Redis lost is dropped, never added back; a Redis
 * that restarts empty is the one exception, for spares taken before the next renewal notices as for held leases).
 * What staleness costs is only slots kept idle, and that is bounded three ways: a count that finds the backend at
 * half its limit or more gives this replica's spares back at once (PUBLISHing if it was full, so waiting
 * replicas retry); a spare still unused at the next renewal tick goes back at the one after (an idle replica
 * returns them within 2 × `leaseTtlMs` / 3); `stop()` gives them all back. Near the limit, releases go to Redis as
 * before. While Redis is unreachable no spares are kept or taken. The fleet view counts another replica's spares
 * as load on the backend (at most MAX_SPARES each, and only while it is below half its limit).
 *
 * The same sets are the fleet's load view: every `loadRefreshMs` a background timer counts each backend's live
 * leases (never on a request's path); the router adds its own current count to the others' last known one. This
 * replica's share of a count is its held and spare leases, so its own spares are not taken for others' load.
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

/** KEYS[1] slots; ARGV limit, channel, backend, lease… → leases removed. Publishes when the backend was full. */
const releaseScript = new LuaScript(`local full = redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1])
local removed = 0
for i = 4, #ARGV do removed = removed + redis.call('ZREM', KEYS[1], ARGV[i]) end
if removed > 0 and full then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return removed`);

/**
 * KEYS[1] slots; ARGV ttlMs, n, n held leases…, spare leases… → { held leases that had to be added again (lost while
 * this replica was away), spare leases found gone }. A held lease carries a running request and is put back
 * whatever the count; a spare carries nothing and is only extended while it is still live, never re-added (that
 * could take the fleet past the limit).
 */
const renewScript = new LuaScript(`${NOW}
local expiry = now + tonumber(ARGV[1])
local last = 2 + tonumber(ARGV[2])
local result = { 0 }
for i = 3, last do result[1] = result[1] + redis.call('ZADD', KEYS[1], expiry, ARGV[i]) end
for i = last + 1, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) > now then redis.call('ZADD', KEYS[1], expiry, ARGV[i])
  else result[#result + 1] = ARGV[i] end
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
return result`);

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

/**
 * Spares one replica keeps per backend at most. A replica's steady traffic to a backend turns over one or two
 * requests at a time (the next one usually arrives as, or just after, one ends), so two spares serve it without
 * round trips; more would only hold slots the other replicas might want, for up to two renewal ticks.
 */
export const MAX_SPARES = 2;

/** A lease in Redis: its id and the clock time of the last call that made it live for a whole `leaseTtlMs`. */
interface Lease {
  readonly id: string;
  at: number;
  /** A spare that was spare at the last renewal tick already (given back at the next one if still unused). */
  idle: boolean;
}

/** A default replica id: unique per process, readable in Redis. */
export function defaultReplicaId(): string {
  return `${hostname()
    .replace(/[^A-Za-z0-9_.-]/g, '-')
    .slice(0, 40)}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

export class SharedSlots {
  readonly channel: string;
  readonly #options: SharedSlotsOptions;
  /** Leases this replica's running requests hold, per backend. */
  readonly #held = new Map<string, Lease[]>();
  /** Leases this replica keeps for its next requests, per backend (live in Redis, renewed with the held ones). */
  readonly #spares = new Map<string, Lease[]>();
  /** The other replicas' live leases on each backend as last read (`at` 0 = never read). */
  readonly #others = new Map<string, { count: number; at: number }>();
  readonly #limits = new Map<string, number>();
  readonly #keys = new Map<string, string>();
  /** A load read older than this is not trusted to keep spares (the router's bound for the fleet view). */
  readonly #readMaxAgeMs: number;
  #sequence = 0;
  #degraded = false;
  #stopped = false;
  #renewTimer: NodeJS.Timeout | undefined;
  #loadTimer: NodeJS.Timeout | undefined;
  #loadPending = false;
  /** Counters for metrics (`spareHits`: acquires served from a spare, without a round trip). */
  readonly stats = { fallbacks: 0, recreated: 0, errors: 0, spareHits: 0 };
  /** Told each backend's live lease count (`total`, of which `own` this replica's, held and spare) after every background read. */
  onCount: ((backendId: string, total: number, own: number, at: number) => void) | undefined;
  /** Clock time of the last complete read of every backend's count (0 = never). */
  countedAt = 0;
  /** Told a backend id whenever another replica freed a slot of a backend that was full. */
  onFreed: ((backendId: string) => void) | undefined;

  constructor(options: SharedSlotsOptions, backends: ReadonlyMap<string, number>) {
    this.#options = options;
    this.channel = redisKey(options.keyPrefix, 'cluster', 'freed');
    this.#readMaxAgeMs = Math.max(1_000, options.loadRefreshMs * 4);
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
      if (!this.#spares.has(id)) this.#spares.set(id, []);
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

  /** Stops the timers and gives every spare back (fire and forget); releases from now on go to Redis. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#renewTimer);
    clearInterval(this.#loadTimer);
    for (const id of this.#spares.keys()) this.giveBackSpares(id);
  }

  /** Leases this replica's running requests hold on the backend. */
  held(backendId: string): number {
    return this.#held.get(backendId)?.length ?? 0;
  }

  /** Spare leases this replica keeps on the backend (all backends without an id). */
  spares(backendId?: string): number {
    if (backendId !== undefined) return this.#spares.get(backendId)?.length ?? 0;
    let count = 0;
    for (const spares of this.#spares.values()) count += spares.length;
    return count;
  }

  /** Takes a fleet-wide slot: a spare of this replica without a round trip, else one round trip. Never throws. */
  async acquire(backendId: string): Promise<SlotGrant> {
    const redis = this.#options.redis;
    if (redis.status !== 'ready') return this.fallBack('redis not ready');
    const held = this.#held.get(backendId) as Lease[];
    const spare = this.takeSpare(backendId);
    if (spare !== undefined) {
      held.push(spare);
      this.stats.spareHits++;
      return 'leased';
    }
    const lease: Lease = { id: `${this.#options.replicaId}:${++this.#sequence}`, at: Date.now(), idle: false };
    try {
      const taken = await acquireScript.run(redis, [this.#keys.get(backendId) as string], [lease.id, this.#limits.get(backendId) as number, this.#options.leaseTtlMs]);
      this.recovered();
      if (taken !== 1) return 'full';
      held.push(lease);
      return 'leased';
    } catch (error) {
      this.stats.errors++;
      return this.fallBack((error as Error).message);
    }
  }

  /**
   * Gives one of this replica's leases on the backend back: kept as a spare while the backend is far from its
   * limit fleet-wide (no round trip), else released to Redis (fire and forget: a lost release expires).
   */
  release(backendId: string): void {
    const lease = this.#held.get(backendId)?.pop();
    if (lease === undefined) return;
    const redis = this.#options.redis;
    if (redis.status !== 'ready') return;
    if (this.keepsSpare(backendId)) {
      lease.idle = false;
      this.#spares.get(backendId)?.push(lease);
      return;
    }
    this.sendRelease(backendId, [lease]);
  }

  /**
   * Keeps the lease just freed as a spare? Only while Redis answers and the backend is far from its limit: the
   * fleet's leases as this replica knows them (the others' at the last read, its own now, spares included: they
   * are in Redis), with this one, stay below half the limit, and this replica keeps fewer than MAX_SPARES.
   */
  private keepsSpare(backendId: string): boolean {
    if (this.#degraded || this.#stopped) return false;
    const spares = this.#spares.get(backendId) as Lease[];
    if (spares.length >= MAX_SPARES) return false;
    const others = this.#others.get(backendId);
    if (others === undefined || Date.now() - others.at > this.#readMaxAgeMs) return false;
    const fleet = others.count + this.held(backendId) + spares.length + 1;
    return fleet < (this.#limits.get(backendId) as number) / 2;
  }

  /** The newest spare still surely live in Redis (a spare not renewed for half a TTL is given back instead). */
  private takeSpare(backendId: string): Lease | undefined {
    if (this.#degraded) return undefined; // a round trip tells whether Redis is back
    const spares = this.#spares.get(backendId);
    if (spares === undefined || spares.length === 0) return undefined;
    const freshAfter = Date.now() - this.#options.leaseTtlMs / 2;
    let spare = spares.pop();
    const stale: Lease[] = [];
    while (spare !== undefined && spare.at < freshAfter) {
      stale.push(spare);
      spare = spares.pop();
    }
    if (stale.length > 0) this.sendRelease(backendId, stale);
    return spare;
  }

  /** Gives every spare of the backend back to Redis (fire and forget). */
  private giveBackSpares(backendId: string): void {
    const spares = this.#spares.get(backendId);
    if (spares === undefined || spares.length === 0) return;
    this.#spares.set(backendId, []);
    this.sendRelease(backendId, spares);
  }

  private sendRelease(backendId: string, leases: readonly Lease[]): void {
    const redis = this.#options.redis;
    if (redis.status !== 'ready') return; // they expire
    releaseScript
      .run(redis, [this.#keys.get(backendId) as string], [this.#limits.get(backendId) as number, this.channel, backendId, ...leases.map((lease) => lease.id)])
      .catch(() => {
        this.stats.errors++;
      });
  }

  /**
   * One renewal tick: gives back the spares that stayed unused since the last tick, then renews every lease this
   * replica holds or keeps (one call per backend with some). A spare found gone from Redis is dropped, not re-added.
   */
  async renew(): Promise<void> {
    const redis = this.#options.redis;
    if (redis.status !== 'ready') {
      for (const id of this.#spares.keys()) this.#spares.set(id, []); // unrenewed, they expire
      return;
    }
    const sentAt = Date.now();
    const calls: Promise<void>[] = [];
    for (const [id, held] of this.#held) {
      let spares = this.#spares.get(id) as Lease[];
      if (spares.some((spare) => spare.idle)) {
        this.sendRelease(
          id,
          spares.filter((spare) => spare.idle),
        );
        spares = spares.filter((spare) => !spare.idle);
        this.#spares.set(id, spares);
      }
      for (const spare of spares) spare.idle = true;
      if (held.length === 0 && spares.length === 0) continue;
      const renewing = [...held, ...spares];
      calls.push(
        renewScript.run(redis, [this.#keys.get(id) as string], [this.#options.leaseTtlMs, held.length, ...renewing.map((lease) => lease.id)]).then(
          (reply) => {
            const [added, ...gone] = reply as [number, ...string[]];
            this.stats.recreated += Number(added);
            for (const lease of renewing) if (!gone.includes(lease.id)) lease.at = sentAt;
            if (gone.length > 0) {
              const current = this.#spares.get(id) as Lease[];
              this.#spares.set(
                id,
                current.filter((spare) => !gone.includes(spare.id)),
              );
            }
          },
          () => {
            this.stats.errors++;
          },
        ),
      );
    }
    await Promise.all(calls);
  }

  /**
   * Reads every backend's live lease count (background, every loadRefreshMs). A backend found at half its limit
   * or more gets this replica's spares back at once, so they never keep a slot from a replica that needs it.
   */
  async refreshLoad(): Promise<void> {
    const redis = this.#options.redis;
    if (this.#loadPending || redis.status !== 'ready') return;
    this.#loadPending = true;
    try {
      let failed = false;
      await Promise.all(
        [...this.#keys].map(([id, key]) =>
          countScript.run(redis, [key], []).then(
            (count) => {
              const total = Number(count);
              const own = this.held(id) + this.spares(id);
              const now = Date.now();
              this.#others.set(id, { count: Math.max(0, total - own), at: now });
              if (total >= (this.#limits.get(id) as number) / 2) this.giveBackSpares(id);
              this.onCount?.(id, total, own, now);
            },
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
      for (const id of this.#spares.keys()) this.giveBackSpares(id); // sent if the connection still is; else they expire
    }
    return 'local';
  }

  private recovered(): void {
    if (!this.#degraded) return;
    this.#degraded = false;
    this.#options.logger.info('cluster: Redis answers again, backend slots are shared by the fleet');
  }
}
