/**
 * buildApp(deps): the only wiring point. It never listens; server.ts and the
 * tests do. Plugins are registered in an explicit order.
 */
import { createHash, randomUUID } from 'node:crypto';
import { type AnswerDigest, digestAnswer } from './audit/answer-digest.ts';
import { AdminQueueDrain } from './audit/admin-queue.ts';
import { AuditFileSink } from './audit/file-sink.ts';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Registry as PromRegistry } from 'prom-client';
import { bodyPlugin } from './api/body.ts';
import { healthPlugin, readyzHandler } from './api/health.ts';
import { metricsPlugin } from './api/metrics.ts';
import { BackendMonitor } from './backends/monitor.ts';
import { BackendRegistry, type DispatcherFactory } from './backends/registry.ts';
import type { SwitchyardConfig } from './config/schema.ts';
import { gatewayError } from './errors.ts';
import { corsPlugin } from './api/cors.ts';
import { invalidPath, nonCanonicalPath, routerError } from './api/path.ts';
import { installErrorHandlers, sendError } from './api/error-reply.ts';
import { createInfoLineWriter } from './logging.ts';
import { clientErrorHandler, listenerTimeouts, missingHost } from './api/listener.ts';
import { httpsOptions } from './api/tls.ts';
import { lingerOnUnreadBody } from './api/linger.ts';
import { GatewayMetrics } from './metrics/metrics.ts';
import { newRecord, type RequestRecord } from './proxy/record.ts';
import type { SwitchyardState } from './state.ts';
import { reloader } from './config/reload.ts';
import { surfacesPlugin } from './surfaces/plugin.ts';
import { Router } from './routing/router.ts';
import { ZonePolicy } from './routing/zones.ts';
import { Guard } from './guard/policy.ts';
import { adminPlugin } from './api/admin.ts';
import { accessPlugin, checkAdminToken } from './api/access.ts';
import { createCacheStore } from './cache/create.ts';
import type { CacheEntry } from './cache/entry.ts';
import { SingleFlight } from './cache/single-flight.ts';
import { createCluster } from './cluster/cluster.ts';
import { createLimits } from './limits/create.ts';
import { settleWaitMs } from './limits/open-reservations.ts';
import { InFlight } from './proxy/in-flight.ts';
import { tenantSalts } from './proxy/isolation.ts';
import { registerSecrets } from './proxy/sanitise.ts';
import type { RedisClient } from './redis/client.ts';
import { loadTracing } from './tracing/trace.ts';

/** What buildApp needs; production passes real parts, tests their own. */
export interface AppDependencies {
  config: SwitchyardConfig;
  logger: Logger;
  /** Prometheus registry (a fresh one per app in tests). */
  promRegistry?: PromRegistry;
  dispatcherFactory?: DispatcherFactory;
  /** Shared Redis (config `redis`); absent = in-memory cache, keys and limits for one process. */
  redis?: RedisClient | undefined;
  /** Start background health probes (default true). */
  healthChecks?: boolean;
  /** The clock circuit breakers time their cooldown with (default Date.now): tests move it instead of sleeping. */
  circuitClock?: () => number;
  /** What /metrics serves (default: this registry's text); a cluster worker passes the merged view of all workers. */
  metricsText?: () => Promise<string>;
  /** Whether this process counts backends' perHour cost (default true; with server.workers only worker 1 does). */
  hourlyCost?: boolean;
}

export type { SwitchyardState } from './state.ts';

const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;

function selfChild<T>(this: T): T {
  return this;
}

/** Listener options: plain HTTP, or HTTPS with server.tls (the same timeouts either way). */
function listener(server: SwitchyardConfig['server']) {
  const { requestTimeout, http } = listenerTimeouts(server);
  return server.tls ? { requestTimeout, https: httpsOptions(server.tls, http) } : { requestTimeout, http };
}

/** Builds the gateway application (not listening). */
export async function buildApp(deps: AppDependencies): Promise<FastifyInstance> {
  const { config } = deps;
  const backends = new BackendRegistry(config, deps.dispatcherFactory, deps.circuitClock);
  // Replicas that act as one (config `cluster`): shared slots, load view and single flight through Redis.
  const cluster = createCluster(config, deps.redis, deps.logger);
  const router = new Router(backends, Date.now, Math.random, cluster);
  const promRegistry = deps.promRegistry ?? new PromRegistry();
  const metrics = new GatewayMetrics(promRegistry, backends, router, deps.redis, config.metrics.tenantLabels, deps.hourlyCost ?? true, cluster);
  router.onPrediction = (backend, predictedMs, actualMs) => metrics.prediction.series(backend.id).observe(actualMs / Math.max(1, predictedMs));
  const app = Fastify({
    // No child logger per request (it cost more than the line itself): the lines this app writes per request
    // carry `requestId` explicitly. A logger whose child() is itself keeps Fastify on its default factory
    // (a custom factory gets its result validated on every request).
    loggerInstance: Object.create(deps.logger, { child: { value: selfChild } }) as FastifyBaseLogger,
    // One log line per request is written by `report`, so Fastify's own request logging is off.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    genReqId: (request) => {
      const header = request.headers['x-request-id'];
      return typeof header === 'string' && requestIdPattern.test(header) ? header : randomUUID();
    },
    bodyLimit: config.server.bodyLimitBytes,
    keepAliveTimeout: config.server.keepAliveTimeoutMs,
    ...listener(config.server),
    // Timeouts, malformed requests and oversized headers, found by Node before any route: our shape, then close.
    clientErrorHandler: clientErrorHandler((error) => metrics.errors.series(error.errorName, error.origin).inc()),
    return503OnClosing: false,
    trustProxy: config.server.trustProxy,
    routerOptions: { ignoreTrailingSlash: true },
    // Errors the router raises before any hook (a malformed escape in the path): our shape, counted and logged.
    frameworkErrors: (error, request, reply) => {
      request.record = newRecord(request.id, performance.now());
      reply.header('x-request-id', request.id);
      sendError(request, reply, routerError(error));
    },
  });

  // Connections past the cap are closed as they arrive (0 = no cap).
  if (config.server.maxConnections > 0) app.server.maxConnections = config.server.maxConnections;
  metrics.trackInflightRequests(app.server);
  const monitor = new BackendMonitor(backends, deps.logger);
  const keyPrefix = config.redis?.keyPrefix ?? 'swy';
  const cache = createCacheStore({
    config: config.cache,
    logger: deps.logger,
    redis: deps.redis,
    keyPrefix,
    onFailure: (operation, reason) => metrics.cacheErrors.labels(operation, reason).inc(),
  });
  const limits = createLimits({
    auth: config.auth,
    limits: config.limits,
    logger: deps.logger,
    redis: deps.redis,
    keyPrefix,
    onRedisError: (limiter, operation) => metrics.limitErrors.labels(limiter, operation).inc(),
  });

  // Secrets an upstream might echo back (its own API key, above all) never reach a client or a log line.
  registerSecrets([...config.backends.map((backend) => backend.apiKey), config.admin.token, config.redis?.password, config.cache.encryptionKey, config.isolation.secret]);
  // The audit log: records are queued here and sealed and written in batches off the request's path.
  const audit = config.audit.enabled
    ? await AuditFileSink.open({
        path: config.audit.path,
        key: config.audit.hmacKey as string,
        maxBytes: config.audit.maxBytes,
        flushIntervalMs: config.audit.flushIntervalMs,
        maxBufferedRecords: config.audit.maxBufferedRecords,
        onError: (error) => deps.logger.error({ err: error.message }, 'audit log write failed'),
      })
    : undefined;
  // With the audit log on, every byte of every answer (however it was written) is hashed as it goes out.
  const answerDigests = new WeakMap<object, AnswerDigest>();
  audit?.write({ time: new Date().toISOString(), type: 'admin', action: 'start', detail: `${config.backends.length} backends, ${config.models.length} models` });
  // Key changes made by `switchyard keys` (another process) arrive through Redis and join this chain.
  const adminQueue =
    audit && deps.redis
      ? new AdminQueueDrain(
          deps.redis,
          keyPrefix,
          (fields) => audit.write(fields),
          1_000,
          (error) => deps.logger.warn({ err: error.message }, 'audit: reading queued admin records failed'),
        )
      : undefined;
  // Tracing: the OpenTelemetry SDK is imported only when it is on; off, requests never see it (record.trace stays undefined).
  const tracing = config.tracing.enabled ? await loadTracing(config.tracing, deps.logger) : undefined;
  const writeInfoLine = createInfoLineWriter(deps.logger);
  // A tenant's data policy may lower its request lines to debug or drop them (tenants.<t>.logging.requests).
  const logLevelsOf = (tenants: SwitchyardConfig['tenants']) =>
    new Map(Object.entries(tenants).flatMap(([tenant, policy]) => (policy.logging?.requests ? [[tenant, policy.logging.requests]] : [])));
  let requestLogLevels = logLevelsOf(config.tenants);
  const writeRequestLine = (tenant: string | undefined, line: Record<string, unknown>): void => {
    const level = requestLogLevels.size === 0 ? undefined : requestLogLevels.get(tenant ?? 'default');
    if (level === undefined || level === 'info') writeInfoLine(line);
    else if (level === 'debug') deps.logger.debug(line);
  };
  const state: SwitchyardState = {
    config,
    backends,
    router,
    promRegistry,
    metricsText: deps.metricsText ?? (() => promRegistry.metrics()),
    metrics,
    cache,
    flights: new SingleFlight<CacheEntry>(),
    cluster,
    limits,
    redis: deps.redis,
    shuttingDown: false,
    inFlight: new InFlight(),
    salts: tenantSalts(config, deps.logger),
    zones: new ZonePolicy(config),
    guard: Guard.create(config),
    reloadChecks: [],
    reloadFromFile: undefined,
    reload: (next) => reload(next),
    report(request, statusCode) {
      const record = request.record;
      if (record.status === 0) record.status = statusCode ?? 0;
      const totalMs = performance.now() - record.startedAt;
      metrics.observe(record, totalMs);
      record.trace?.end(record, request);
      const line: Record<string, unknown> = {
        requestId: record.requestId,
        method: request.method,
        url: request.url,
        endpoint: record.endpoint,
        model: record.model,
        backend: record.backend,
        status: record.status,
        stream: record.stream,
        latencyMs: Math.round(totalMs * 10) / 10,
        ttftMs: record.firstByteMs === undefined ? undefined : Math.round(record.firstByteMs * 10) / 10,
        attempts: record.attempts,
        promptTokens: record.usage?.prompt_tokens,
        completionTokens: record.usage?.completion_tokens,
      };
      if (record.failures.length > 0) line.failures = record.failures;
      if (record.errorCode) line.errorCode = record.errorCode;
      if (record.guard) line.guard = record.guard;
      if (record.errorName) {
        line.errorName = record.errorName;
        line.errorOrigin = record.errorOrigin;
      }
      if (record.clientClosed) line.clientClosed = true;
      if (record.cache !== 'bypass') line.cache = record.cache;
      if (record.keyId) line.keyId = record.keyId;
      if (record.tenant && record.tenant !== 'default') line.tenant = record.tenant;
      if (record.cost > 0) line.cost = record.cost;
      if (config.logging.logPrompts && request.body) line.requestBody = (request.body as { raw?: string }).raw;
      line.msg = 'request completed';
      writeRequestLine(record.tenant, line);
      if (audit) {
        const raw = (request.body as { raw?: string } | undefined)?.raw;
        audit.write({
          time: new Date().toISOString(),
          type: 'request',
          requestId: record.requestId,
          tenant: record.tenant,
          keyId: record.keyId,
          surface: record.endpoint,
          model: record.model,
          backend: record.backend,
          zone: record.backend === undefined ? undefined : backends.byId.get(record.backend)?.zone,
          status: record.status,
          promptTokens: record.usage?.prompt_tokens,
          completionTokens: record.usage?.completion_tokens,
          cost: record.cost > 0 ? record.cost : undefined,
          cache: record.cache,
          guard: record.guard,
          requestSha256: raw === undefined ? undefined : createHash('sha256').update(raw).digest('hex'),
          responseSha256: answerDigests.get(request.raw)?.digest(),
        });
      }
    },
  };
  const reload = reloader({
    state,
    backends,
    cluster,
    monitor,
    keys: limits.keys,
    logger: deps.logger,
    probe: deps.healthChecks !== false,
    audit,
    applied: (applied) => {
      requestLogLevels = logLevelsOf(applied.tenants);
    },
  });
  app.decorate('switchyard', state);
  app.decorateRequest('record', null as unknown as RequestRecord);

  // Callback-style hooks: an async hook costs a promise and a microtask hop per request.
  app.addHook('onRequest', (request, reply, done) => {
    request.record = newRecord(request.id, performance.now());
    // Inference requests (and the admin API's) are POSTs; probes and scrapes are not traced.
    if (tracing !== undefined && request.method === 'POST') request.record.trace = tracing.start(request.headers);
    request.response = reply.raw;
    reply.header('x-request-id', request.id);
    if (audit) answerDigests.set(request.raw, digestAnswer(reply.raw));
    const noHost = missingHost(request.raw);
    if (noHost) {
      reply.header('connection', 'close');
      done(noHost);
      return;
    }
    const unusual = nonCanonicalPath(request.url);
    if (unusual !== undefined) {
      done(invalidPath(unusual));
      return;
    }
    if (state.shuttingDown && request.method === 'POST') {
      reply.header('connection', 'close');
      done(gatewayError('SWY_ERR_SHUTTING_DOWN', { retryAfterSeconds: 1 }));
      return;
    }
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    // Answers written past Fastify are reported by the pipeline that wrote them (see proxy/raw-reply.ts).
    if (!request.record.rawAnswer) state.report(request, reply.statusCode);
    // Answered before the body was read (401, 413, 503): discard the rest within bounds, so the client sees the answer.
    if (!request.raw.complete) lingerOnUnreadBody(request.raw);
    done();
  });

  installErrorHandlers(app);

  await app.register(bodyPlugin);
  await app.register(corsPlugin);
  await app.register(accessPlugin);
  await app.register(healthPlugin);
  // With admin.port set, /admin/* and /metrics move to their own listener (buildAdminApp) and leave this one.
  const separateAdmin = config.admin.port !== undefined;
  if (!separateAdmin) await app.register(metricsPlugin);
  await app.register(surfacesPlugin);
  if (!separateAdmin) await app.register(adminPlugin);

  if (deps.healthChecks !== false) app.addHook('onReady', async () => monitor.start());
  cluster?.start();
  app.addHook('preClose', async () => {
    state.shuttingDown = true;
  });
  app.addHook('onClose', async () => {
    monitor.stop();
    cluster?.stop();
    await adminQueue?.stop();
    if (audit) {
      audit.write({ time: new Date().toISOString(), type: 'admin', action: 'shutdown' });
      await audit.close();
    }
    // Requests still unwinding settle their usage before the caller closes Redis (startGateway waits the same way).
    await limits.open.drained(settleWaitMs(config.redis));
    await backends.close();
    // Spans still buffered go out before the process exits.
    await tracing?.shutdown();
  });
  return app;
}

/**
 * The separate listener for /admin/* and /metrics (config admin.port), so they
 * need not be reachable where clients are. Shares the gateway's state.
 */
export async function buildAdminApp(main: FastifyInstance, logger: Logger): Promise<FastifyInstance> {
  const state = main.switchyard;
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    http: { requireHostHeader: false },
    frameworkErrors: (error, request, reply) => {
      sendError(request, reply, routerError(error), (sent) => state.metrics.errors.series(sent.errorName, sent.origin).inc());
    },
  });
  app.decorate('switchyard', state);
  // By the matched route's access class, never the raw URL (the metrics route is open here: this is the private listener).
  app.addHook('onRequest', (request, reply, done) => {
    const noHost = missingHost(request.raw);
    if (noHost) {
      reply.header('connection', 'close');
      done(noHost);
      return;
    }
    const unusual = nonCanonicalPath(request.url);
    if (unusual !== undefined) {
      done(invalidPath(unusual));
      return;
    }
    try {
      if (request.routeOptions.config.access === 'admin') checkAdminToken(request, state.config.admin.token, state.config.auth.mode);
    } catch (error) {
      done(error as Error);
      return;
    }
    done();
  });
  // No request record here: errors are counted as they are sent (the gateway counts them when it reports).
  installErrorHandlers(app, (error) => state.metrics.errors.series(error.errorName, error.origin).inc());
  app.get('/healthz', { config: { access: 'public' } }, async () => ({ status: 'ok' }));
  // The private listener: readiness with its detail.
  app.get(
    '/readyz',
    { config: { access: 'public' } },
    readyzHandler(state, () => true),
  );
  await app.register(metricsPlugin);
  await app.register(adminPlugin);
  return app;
}
