/**
 * The Redis connection, through ioredis.
 *
 * README: connecting to Redis
 * ---------------------------
 * Without a `redis` section every store is in memory (one process). With one,
 * the response cache, API keys and limits are shared by every replica:
 *
 *   redis:
 *     url: redis://:${REDIS_PASSWORD}@redis.internal:6379/0   # plain TCP
 *     # url: rediss://redis.internal:6380                      # TLS (rediss://)
 *     # tls:                                                  # TLS details (implies TLS)
 *     #   caFile: /etc/switchyard/redis-ca.pem                # private CA
 *     #   certFile: /etc/switchyard/client.pem                # mutual TLS
 *     #   keyFile: /etc/switchyard/client-key.pem
 *     #   servername: redis.internal                          # when it differs from the host
 *     keyPrefix: swy                                          # every key starts with "swy:"
 *     commandTimeoutMs: 300     # a hung Redis fails a command after this long
 *     connectTimeoutMs: 2000
 *     startupWaitMs: 2000       # startup waits this long for Redis, then serves anyway
 *
 *   Sentinel (high availability): list sentinels and the master group name;
 *   `url` is not used, `password`/`username`/`db` apply to the master.
 *     redis:
 *       sentinels: [{ host: sentinel-1, port: 26379 }, { host: sentinel-2, port: 26379 }]
 *       name: mymaster
 *       password: ${REDIS_PASSWORD}
 *       sentinelPassword: ${SENTINEL_PASSWORD}   # when the sentinels need one
 *
 *   Cluster: list some nodes, the rest are discovered. Keys that a Lua script
 *   touches together share a hash tag, so every feature works on a cluster.
 *     redis:
 *       cluster: { nodes: [{ host: redis-0, port: 6379 }, { host: redis-1, port: 6379 }] }
 *       password: ${REDIS_PASSWORD}
 *
 * When Redis fails: commands are not queued while the connection is down
 * (`enableOfflineQueue: false`) and time out after `commandTimeoutMs`, so a
 * dead or hung Redis costs a request at most that long; ioredis keeps
 * reconnecting in the background and the gateway recovers without a restart.
 * The cache is bypassed meanwhile; limits follow `limits.onRedisError`.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisConfig } from './config.ts';

/** A standalone/Sentinel connection or a Cluster; both speak the same commands. */
export type RedisClient = Redis | Cluster;

function tlsOptions(config: RedisConfig): ConnectionOptions | undefined {
  const tls = config.tls;
  const wantsTls = tls !== undefined || config.url?.startsWith('rediss://') === true;
  if (!wantsTls) return undefined;
  const options: ConnectionOptions = { rejectUnauthorized: tls?.rejectUnauthorized ?? true };
  if (tls?.caFile) options.ca = readFileSync(tls.caFile);
  if (tls?.certFile) options.cert = readFileSync(tls.certFile);
  if (tls?.keyFile) options.key = readFileSync(tls.keyFile);
  if (tls?.servername) options.servername = tls.servername;
  return options;
}

/** Reconnect backoff: 50 ms, 100 ms, … capped at 2 s, forever. */
function retryStrategy(times: number): number {
  return Math.min(times * 50, 2_000);
}

function commonOptions(config: RedisConfig): RedisOptions {
  const options: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: config.maxRetriesPerRequest,
    commandTimeout: config.commandTimeoutMs,
    connectTimeout: config.connectTimeoutMs,
    retryStrategy,
    connectionName: 'switchyard',
    // A primary turned into a replica under an open connection (a failover a client did not see, a managed
    // Redis moving its DNS name) answers writes with READONLY: reconnect, which finds the primary again.
    reconnectOnError: (error) => error.message.startsWith('READONLY'),
  };
  if (config.username !== undefined) options.username = config.username;
  if (config.password !== undefined) options.password = config.password;
  if (config.db !== undefined) options.db = config.db;
  const tls = tlsOptions(config);
  if (tls) options.tls = tls;
  return options;
}

/**
 * `username`, `password` and `db` set in the config win over the ones in `url` (README promises it). ioredis
 * merges `new Redis(url, options)` with the url's fields first, so they go into the url itself.
 */
function urlWithOverrides(text: string, config: Pick<RedisConfig, 'username' | 'password' | 'db'>): string {
  if (config.username === undefined && config.password === undefined && config.db === undefined) return text;
  const url = new URL(text);
  if (config.username !== undefined) url.username = encodeURIComponent(config.username);
  if (config.password !== undefined) url.password = encodeURIComponent(config.password);
  if (config.db !== undefined) url.pathname = `/${config.db}`;
  return url.toString();
}

function describe(config: RedisConfig): string {
  if (config.cluster) return `cluster (${config.cluster.nodes.map((node) => `${node.host}:${node.port}`).join(', ')})`;
  if (config.sentinels) return `sentinel master "${config.name ?? ''}"`;
  if (!config.url) return 'redis';
  try {
    const url = new URL(config.url);
    return `${url.protocol}//${url.host}`; // never the password
  } catch {
    return 'redis (unparsable url)';
  }
}

/**
 * Builds the client without connecting (call `connectRedis` at startup).
 * Chooses Cluster when `cluster` is set, Sentinel when `sentinels` is set,
 * else the `url`. Connection errors are logged (without credentials), and
 * not more than once per state change.
 */
export function createRedis(config: RedisConfig, logger: Logger): RedisClient {
  const options = commonOptions(config);
  let client: RedisClient;
  if (config.cluster) {
    const { db: _db, ...redisOptions } = options;
    client = new Cluster(config.cluster.nodes, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRedirections: 4,
      clusterRetryStrategy: retryStrategy,
      redisOptions,
    });
  } else if (config.sentinels) {
    if (!config.name) throw new Error('redis.name: the Sentinel master group name is required with redis.sentinels');
    // failoverDetector: the sentinels announce a new primary (+switch-master) and the connection moves to it at
    // once. Without it a planned switchover (SENTINEL FAILOVER) left the connection on the old primary, which
    // Sentinel demotes only seconds later and which took writes meanwhile that were then lost.
    const sentinelOptions: RedisOptions = { ...options, sentinels: config.sentinels, name: config.name, failoverDetector: true };
    if (config.sentinelPassword !== undefined) sentinelOptions.sentinelPassword = config.sentinelPassword;
    if (options.tls) sentinelOptions.enableTLSForSentinelMode = true;
    client = new Redis(sentinelOptions);
  } else {
    if (!config.url) throw new Error('redis.url: set a redis:// or rediss:// URL (or redis.sentinels / redis.cluster)');
    client = new Redis(urlWithOverrides(config.url, config), options);
  }
  const where = describe(config);
  let down = false;
  client.on('error', (error: Error) => {
    if (down) return;
    down = true;
    logger.warn({ redis: where, err: { message: error.message } }, 'redis connection failed; retrying in the background');
  });
  client.on('ready', () => {
    if (down) logger.info({ redis: where }, 'redis connection restored');
    down = false;
  });
  watchForHang(client, config.commandTimeoutMs, () => logger.warn({ redis: where }, 'redis stopped answering; reconnecting (commands fail at once meanwhile)'));
  return client;
}

/**
 * A hung Redis (the process stopped, a network black hole) keeps its connection open and answers nothing, so
 * every command would wait its full `commandTimeoutMs`, and a request making several in turn (API key, cache,
 * limits) would wait several times that. A PING every `timeoutMs` notices within about two of them; the
 * connection is then dropped and reconnected, and while it is not ready every command fails at once
 * (`enableOfflineQueue: false`), so requests go on at full speed with Redis's failure modes (cache bypassed,
 * limits per `limits.onRedisError`, known keys from the cache up to `auth.maxStaleMs`). Once Redis answers
 * again, the reconnect completes and everything is back. The timer does not keep the process alive.
 */
function watchForHang(client: RedisClient, timeoutMs: number, onHang: () => void): void {
  let pending = false;
  const timer = setInterval(
    () => {
      if (pending || client.status !== 'ready') return;
      pending = true;
      const started = performance.now();
      client.ping().then(
        () => {
          pending = false;
        },
        () => {
          pending = false;
          // Only a PING that went unanswered for the whole timeout means hung; an error answer means Redis is alive.
          if (client.status === 'ready' && performance.now() - started >= timeoutMs * 0.9) {
            onHang();
            client.disconnect(true);
          }
        },
      );
    },
    Math.max(50, timeoutMs),
  );
  timer.unref();
  client.once('end', () => clearInterval(timer));
}

/**
 * Starts connecting and waits up to `waitMs` for the connection to be ready.
 * Never throws: returns false when Redis is not there yet; ioredis goes on
 * reconnecting, and until then stores behave as on any Redis failure.
 */
export async function connectRedis(client: RedisClient, waitMs: number): Promise<boolean> {
  if (client.status === 'ready') return true;
  const connecting = client.status === 'wait' ? client.connect() : Promise.resolve();
  connecting.catch(() => undefined); // failures are reported by the 'error' listener
  if (waitMs <= 0) return false;
  return new Promise<boolean>((resolve) => {
    const finish = (ready: boolean) => {
      clearTimeout(timer);
      client.off('ready', onReady);
      resolve(ready);
    };
    const onReady = () => finish(true);
    const timer = setTimeout(() => finish(client.status === 'ready'), waitMs);
    client.on('ready', onReady);
    if (client.status === 'ready') finish(true);
  });
}

/** Closes the connection (QUIT, then disconnect if it does not answer quickly). */
export async function closeRedis(client: RedisClient): Promise<void> {
  if (client.status === 'end' || client.status === 'wait') {
    client.disconnect();
    return;
  }
  try {
    await Promise.race([client.quit(), new Promise((resolve) => setTimeout(resolve, 500))]);
  } catch {
    // already gone
  }
  client.disconnect();
}
