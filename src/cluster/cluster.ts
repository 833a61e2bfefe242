/**
 * Replicas that act as one (config `cluster`): shared backend slots and load view (slots.ts) and cross-replica
 * single flight (flight.ts), with one extra Redis connection per replica for their notifications (pub/sub).
 */
import { Cluster } from 'ioredis';
import type { Logger } from 'pino';
import type { SwitchyardConfig } from '../config/schema.ts';
import type { RedisClient } from '../redis/client.ts';
import { clusterShared } from './config.ts';
import { ClusterFlights } from './flight.ts';
import { defaultReplicaId, SharedSlots } from './slots.ts';

export class ClusterState {
  readonly replicaId: string;
  readonly slots: SharedSlots;
  readonly flights: ClusterFlights;
  readonly loadRefreshMs: number;
  readonly pollMs: number;
  readonly #subscriber: RedisClient;
  readonly #logger: Logger;

  constructor(config: SwitchyardConfig, redis: RedisClient, logger: Logger) {
    const cluster = config.cluster;
    const keyPrefix = config.redis?.keyPrefix ?? 'swy';
    this.replicaId = cluster.replicaId ?? defaultReplicaId();
    this.loadRefreshMs = cluster.loadRefreshMs;
    this.pollMs = cluster.pollMs;
    this.#logger = logger;
    this.slots = new SharedSlots(
      { redis, keyPrefix, replicaId: this.replicaId, leaseTtlMs: cluster.leaseTtlMs, loadRefreshMs: cluster.loadRefreshMs, logger },
      new Map(config.backends.map((backend) => [backend.id, backend.maxConcurrency])),
    );
    this.flights = new ClusterFlights({ redis, keyPrefix, lockMs: cluster.flightLockMs, waitMs: cluster.flightWaitMs, pollMs: cluster.pollMs });
    // Pub/sub needs a connection of its own; ioredis subscribes again after a reconnect.
    this.#subscriber = redis instanceof Cluster ? redis.duplicate() : redis.duplicate();
    this.#subscriber.on('error', () => undefined); // the main connection logs Redis trouble
    this.#subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.slots.channel) this.slots.onFreed?.(message);
      else if (channel === this.flights.channel) this.flights.notify(message);
    });
  }

  /** Connects the subscriber and starts the timers; never throws (Redis down: retried in the background). */
  start(): void {
    this.slots.start();
    const subscriber = this.#subscriber;
    // On every (re)connect: a first connect that failed is retried by ioredis, and subscribing twice is harmless.
    subscriber.on('ready', () => void subscriber.subscribe(this.slots.channel, this.flights.channel).catch(() => undefined));
    if (subscriber.status === 'wait') subscriber.connect().catch(() => undefined);
    this.#logger.info({ replicaId: this.replicaId }, 'cluster: slots, load view and single flight shared through Redis');
  }

  stop(): void {
    this.slots.stop();
    this.#subscriber.disconnect();
  }
}

/** The cluster state when the config shares through Redis, else undefined. */
export function createCluster(config: SwitchyardConfig, redis: RedisClient | undefined, logger: Logger): ClusterState | undefined {
  if (!redis || !clusterShared(config)) return undefined;
  return new ClusterState(config, redis, logger);
}
