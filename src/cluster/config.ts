/**
 * The `cluster` config section: replicas that act as one through the shared Redis (see cluster/slots.ts and
 * cluster/flight.ts). One top-level switch rather than a flag per backend: sharing is a property of the
 * deployment (several replicas behind one Service, one Redis), not of a backend, and the lease timing must be
 * the same on every replica for expiry to mean the same thing everywhere.
 */
import { Type, type Static } from '@sinclair/typebox';

export const ClusterConfigSchema = Type.Object(
  {
    shared: Type.Union([Type.Literal('auto'), Type.Boolean()], {
      default: 'auto',
      description:
        'share maxConcurrency, the load view and single flight across replicas through Redis; auto: on when `redis` is configured (a gateway with Redis is one of several replicas)',
    }),
    replicaId: Type.Optional(
      Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.-]+$', description: 'names this replica in lease ids (default: hostname-pid-random)' }),
    ),
    leaseTtlMs: Type.Integer({
      minimum: 200,
      default: 5_000,
      description: 'a slot lease not renewed for this long is free again (a dead replica leaks its slots at most this long); renewed every third of it',
    }),
    pollMs: Type.Integer({ minimum: 5, default: 50, description: 'while requests wait for a shared slot, retry at least this often (besides the release notifications)' }),
    loadRefreshMs: Type.Integer({
      minimum: 20,
      default: 250,
      description: "how often each replica reads the fleet's in-flight count per backend (the routing view's staleness bound)",
    }),
    flightLockMs: Type.Integer({
      minimum: 200,
      default: 10_000,
      description: 'cross-replica single flight: lock lifetime, renewed by the leader while it runs (a dead leader holds followers at most this long)',
    }),
    flightWaitMs: Type.Integer({
      minimum: 100,
      default: 120_000,
      description: "cross-replica single flight: the longest a follower waits for the leader's answer before going upstream itself",
    }),
  },
  { additionalProperties: false, default: {} },
);

export type ClusterConfig = Static<typeof ClusterConfigSchema>;

/** Whether replicas share slots, load and single flight: needs Redis; `auto` follows it. */
export function clusterShared(config: { cluster: ClusterConfig; redis?: unknown }): boolean {
  if (config.redis === undefined) return false;
  return config.cluster.shared !== false;
}
