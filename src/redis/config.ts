/**
 * The `redis` config section. Absent = no Redis: cache, keys and limits use
 * in-memory stores that serve one process.
 */
import { Type, type Static } from '@sinclair/typebox';

const HostPort = Type.Object(
  {
    host: Type.String({ minLength: 1 }),
    port: Type.Integer({ minimum: 1, maximum: 65_535, default: 6379 }),
  },
  { additionalProperties: false },
);

export const RedisTlsSchema = Type.Object(
  {
    caFile: Type.Optional(Type.String({ minLength: 1, description: 'PEM file of the CA that signed the server certificate' })),
    certFile: Type.Optional(Type.String({ minLength: 1, description: 'client certificate (PEM) for mutual TLS' })),
    keyFile: Type.Optional(Type.String({ minLength: 1, description: 'client private key (PEM) for mutual TLS' })),
    servername: Type.Optional(Type.String({ minLength: 1, description: 'SNI / certificate name when it differs from the host' })),
    rejectUnauthorized: Type.Boolean({ default: true, description: 'verify the server certificate (keep true outside tests)' }),
  },
  { additionalProperties: false },
);

export const RedisConfigSchema = Type.Object(
  {
    url: Type.Optional(
      Type.String({
        pattern: '^rediss?://',
        description: 'redis://[user:password@]host:port[/db]; rediss:// for TLS. Not used with sentinels or cluster',
      }),
    ),
    keyPrefix: Type.String({ default: 'swy', pattern: '^[A-Za-z0-9_.-]*$', description: 'first part of every key Switchyard writes' }),
    username: Type.Optional(Type.String()),
    password: Type.Optional(Type.String({ description: 'prefer ${ENV}; overrides the password in url' })),
    db: Type.Optional(Type.Integer({ minimum: 0, description: 'database index (not with cluster)' })),
    tls: Type.Optional(RedisTlsSchema),
    sentinels: Type.Optional(Type.Array(HostPort, { minItems: 1, description: 'Sentinel mode: the sentinels to ask' })),
    name: Type.Optional(Type.String({ minLength: 1, description: 'Sentinel mode: the master group name' })),
    sentinelPassword: Type.Optional(Type.String()),
    cluster: Type.Optional(Type.Object({ nodes: Type.Array(HostPort, { minItems: 1, description: 'Cluster mode: some of the cluster nodes' }) }, { additionalProperties: false })),
    commandTimeoutMs: Type.Integer({ minimum: 10, default: 300, description: 'a command without reply after this fails (Redis hung)' }),
    connectTimeoutMs: Type.Integer({ minimum: 10, default: 2_000 }),
    maxRetriesPerRequest: Type.Integer({ minimum: 0, default: 1, description: 'resends of a command interrupted by a reconnect' }),
    startupWaitMs: Type.Integer({ minimum: 0, default: 2_000, description: 'how long startup waits for Redis before serving anyway' }),
  },
  { additionalProperties: false },
);

export type RedisConfig = Static<typeof RedisConfigSchema>;
