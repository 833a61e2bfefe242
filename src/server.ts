/**
 * Runs the gateway: build the app from a validated config, listen, and shut
 * down gracefully on SIGTERM/SIGINT (stop accepting, let in-flight requests
 * and streams finish within the grace period, then close).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildAdminApp, buildApp, type AppDependencies } from './app.ts';
import { Bag, type BagMember } from './bag.ts';
import { loadConfigFile, reloadProblems } from './config/load.ts';
import { watchConfigFile } from './config/watch.ts';
import type { SwitchyardConfig } from './config/schema.ts';
import { gatewayError } from './errors.ts';
import { settleWaitMs } from './limits/open-reservations.ts';
import { createLogger } from './logging.ts';
import { closeRedis, connectRedis, createRedis } from './redis/client.ts';

const shutdownMessage = 'The gateway is shutting down and ended this request at the end of its grace period. Retry; another replica will answer.';
/** How long requests ended at the grace deadline get to send their error before their connections are closed. */
const endedFlushMs = 500;

/** A listening gateway. */
export interface RunningGateway {
  app: FastifyInstance;
  url: string;
  /** The /admin and /metrics listener, when admin.port is set. */
  adminUrl: string | undefined;
  logger: Logger;
  /** Graceful stop: waits for in-flight requests up to the grace period. */
  shutdown(reason?: string): Promise<void>;
}

/** Builds and starts a gateway; `port` overrides the config's port. */
export async function startGateway(
  config: SwitchyardConfig,
  options: {
    port?: number;
    host?: string;
    logger?: Logger;
    /** the file `config` came from: POST /admin/reload and SIGHUP re-read it */
    configFile?: string;
    /** how this process adapts a config it loads, at start and on reload (a cluster worker: its own audit file) */
    adaptConfig?: (config: SwitchyardConfig) => SwitchyardConfig;
    /** false: never watch the file, whatever server.watchConfig says (a cluster worker: the primary watches) */
    watchConfig?: boolean;
  } & Partial<AppDependencies> = {},
): Promise<RunningGateway> {
  const logger = options.logger ?? createLogger(config);
  // Without `redis` in config the cache, keys and limits live in this process's memory.
  const ownRedis = options.redis === undefined && config.redis ? createRedis(config.redis, logger) : undefined;
  if (ownRedis && config.redis && !(await connectRedis(ownRedis, config.redis.startupWaitMs))) {
    logger.warn('Redis is not reachable yet: serving anyway (cache bypassed, limits per limits.onRedisError); reconnecting in the background');
  }
  const app = await buildApp({ ...options, config, logger, redis: options.redis ?? ownRedis });
  // Runs once the listener has closed (every response ended) and before buildApp's own onClose hooks (Fastify runs
  // them last-added first): requests still unwinding settle their tokens and budgets while Redis is still there.
  app.addHook('onClose', async () => {
    const unsettled = await app.switchyard.limits.open.drained(settleWaitMs(config.redis));
    if (unsettled > 0) logger.warn({ unsettled }, 'shutdown: reservations still unsettled when Redis closes (held until they lapse)');
    if (ownRedis) await closeRedis(ownRedis);
  });
  const file = options.configFile;
  const adapt = options.adaptConfig ?? ((loaded: SwitchyardConfig) => loaded);
  // async: a file that does not load rejects the promise (SIGHUP and the watcher catch it), never throws at the caller
  if (file !== undefined) app.switchyard.reloadFromFile = async () => app.switchyard.reload(adapt(loadConfigFile(file)));
  const unwatch =
    file !== undefined && config.server.watchConfig && options.watchConfig !== false
      ? watchConfigFile(file, () => {
          app.switchyard.reloadFromFile?.().catch((error: unknown) => logger.error({ problems: reloadProblems(error) }, 'config reload refused: the running configuration stays'));
        })
      : undefined;
  if (unwatch) app.addHook('onClose', async () => unwatch());
  const host = options.host ?? config.server.host;
  const port = options.port ?? config.server.port;
  const busy = trackBusySockets(app);
  await app.listen({ host, port });
  const url = urlOf(app, host, config.server.tls ? 'https' : 'http');
  let adminUrl: string | undefined;
  let adminApp: FastifyInstance | undefined;
  if (config.admin.port !== undefined) {
    const admin = await buildAdminApp(app, logger);
    const adminHost = config.admin.host ?? host;
    await admin.listen({ host: adminHost, port: config.admin.port });
    adminUrl = urlOf(admin, adminHost);
    adminApp = admin;
    logger.info({ url: adminUrl }, 'admin and metrics listener');
  }
  let closing: Promise<void> | undefined;

  const shutdown = (reason = 'shutdown') => {
    closing ??= (async () => {
      logger.info({ reason, graceMs: config.server.shutdownGraceMs }, 'shutting down: draining in-flight requests');
      app.switchyard.shuttingDown = true;
      // At the end of the grace period every request still running is ended by the gateway: a stream gets an
      // OpenAI-shaped server_shutting_down event, a request still waiting gets that error as its answer, and each
      // settles what it used. Connections still open a moment later (a client that stopped reading) are closed.
      let last: NodeJS.Timeout | undefined;
      const force = setTimeout(() => {
        const stopped = app.switchyard.inFlight.stopAll(gatewayError('SWY_ERR_SHUTTING_DOWN', { message: shutdownMessage, retryAfterSeconds: 1 }));
        logger.warn({ stopped }, 'grace period over: ending requests in flight with server_shutting_down');
        last = setTimeout(() => app.server.closeAllConnections(), endedFlushMs);
        last.unref();
      }, config.server.shutdownGraceMs);
      force.unref();
      // Connections with nothing in flight would hold close() open: keep-alive ones whose last response ends
      // during the drain, and ones opened ahead of time that never sent a request (which Node does not count as idle).
      const sweep = () => {
        app.server.closeIdleConnections();
        for (const socket of busy.idleSockets()) socket.destroy();
      };
      const sweeper = setInterval(sweep, 100);
      sweep();
      await app.close();
      await adminApp?.close();
      clearInterval(sweeper);
      clearTimeout(force);
      clearTimeout(last);
      logger.info('shutdown complete');
    })();
    return closing;
  };
  return { app, url, adminUrl, logger, shutdown };
}

/** A connection and the requests in flight on it (a Bag member: see src/bag.ts for why not a Map). */
interface TrackedSocket extends BagMember {
  socket: Socket;
  inflight: number;
}

const tracked = Symbol('switchyard.trackedSocket');
/** On a response: the entry of the socket it counts on. */
const countedOn = Symbol('switchyard.countedOn');

/** The response's 'close' listener: one function for every request (no closure or once-wrapper per request). */
function requestEnded(this: ServerResponse & { [countedOn]?: TrackedSocket }): void {
  const entry = this[countedOn];
  if (entry !== undefined) entry.inflight = Math.max(0, entry.inflight - 1);
}

/** Counts requests in flight per socket, so a drain can close the sockets that carry none. */
function trackBusySockets(app: FastifyInstance): { idleSockets(): Socket[] } {
  const sockets = new Bag<TrackedSocket>();
  const track = (socket: Socket & { [tracked]?: TrackedSocket }): TrackedSocket => {
    const entry: TrackedSocket = { socket, inflight: 0, bagSlot: -1 };
    socket[tracked] = entry;
    sockets.add(entry);
    socket.once('close', () => sockets.delete(entry));
    return entry;
  };
  app.server.on('connection', track);
  app.server.on('request', (request: IncomingMessage, response: ServerResponse & { [countedOn]?: TrackedSocket }) => {
    // A TLS request's socket is not the one 'connection' saw: it gets its own entry.
    const entry = (request.socket as Socket & { [tracked]?: TrackedSocket })[tracked] ?? track(request.socket);
    entry.inflight++;
    response[countedOn] = entry;
    response.on('close', requestEnded);
  });
  return { idleSockets: () => sockets.toArray().flatMap((entry) => (entry.inflight === 0 ? [entry.socket] : [])) };
}

function urlOf(app: FastifyInstance, host: string, scheme = 'http'): string {
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Reloads the config file on SIGHUP; a refused file is logged with its problems and changes nothing. */
export function reloadOnSighup(gateway: RunningGateway): void {
  process.on('SIGHUP', () => {
    const fromFile = gateway.app.switchyard.reloadFromFile;
    if (fromFile === undefined) return;
    fromFile().catch((error: unknown) => {
      gateway.logger.error({ problems: reloadProblems(error) }, 'config reload refused: the running configuration stays');
    });
  });
}

/** Exits 0 after a graceful shutdown on SIGTERM or SIGINT. */
export function exitOnSignals(gateway: { shutdown(reason?: string): Promise<void> }, extra: () => Promise<void> = async () => {}): void {
  const handle = (signal: NodeJS.Signals) => {
    gateway
      .shutdown(signal)
      .then(extra)
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.once('SIGTERM', handle);
  process.once('SIGINT', handle);
}
