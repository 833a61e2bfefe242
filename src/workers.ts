/**
 * `server.workers`: N gateway processes on one port through node:cluster.
 *
 * The primary loads and validates the config, forks N workers and does no
 * request work itself. Each worker runs `startGateway` as a single process
 * would; the cluster module shares the listening sockets (the primary accepts
 * and hands connections round-robin). Workers share nothing but Redis.
 *
 * Lifecycle: SIGTERM/SIGINT on the primary is passed to every worker, each
 * drains as a single process does (server.shutdownGraceMs), and the primary
 * exits once all have exited (0 when they all exited cleanly). A worker that
 * dies otherwise is forked again after a backoff that doubles while workers
 * keep dying young (100 ms up to 30 s), so a crash loop does not spin. A
 * worker that dies before the gateway ever listened (a port in use, a bad
 * certificate) stops the whole gateway instead: restarting cannot fix it.
 *
 * Metrics: a scrape on any worker (main or admin listener) asks the primary,
 * which collects every worker's registry as JSON over IPC and merges them with
 * prom-client's AggregatorRegistry.aggregate, each metric by its own
 * `aggregator` (see metrics.ts). Counters and histograms of a worker that died
 * stay in the sum as last collected, so totals never go backwards when a
 * worker is replaced.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { reloadProblems } from './config/load.ts';
import { watchConfigFile } from './config/watch.ts';
import type { SwitchyardConfig } from './config/schema.ts';

/** The environment variable that gives a worker its number (1..N), kept by the worker that replaces it. */
export const workerIdVariable = 'SWITCHYARD_WORKER_ID';

/** How long the primary waits for one worker's metrics before using what it last collected from it. */
const collectTimeoutMs = 3_000;
/** How long a worker waits for the primary's merged metrics. */
const aggregateTimeoutMs = 5_000;
/** Restart backoff: first delay, cap, and how long a worker must live for the next crash to start again from the first delay. */
const backoffFirstMs = 100;
const backoffMaxMs = 30_000;
const stableAfterMs = 10_000;

/** One registry's `getMetricsAsJSON()` (at run time `type` is the string 'counter', 'gauge', 'histogram' or 'summary'). */
type MetricsJson = Array<{ name: string; type: unknown; aggregator: string; values: unknown[] }>;

/** IPC messages between primary and workers, tagged so they never mix with prom-client's or Node's own. */
type Message =
  | { swy: 'listening'; url: string; adminUrl: string | undefined }
  | { swy: 'aggregate'; id: number }
  | { swy: 'aggregated'; id: number; text?: string; error?: string }
  | { swy: 'collect'; id: number }
  | { swy: 'collected'; id: number; metrics: MetricsJson }
  /** primary → worker: reload the config file (SIGHUP on the primary, or another worker reloaded) */
  | { swy: 'reload' }
  /** worker → primary: this worker reloaded through POST /admin/reload; the others should too */
  | { swy: 'reloaded' };

/** The worker count `server.workers` asks for. */
export function workerCount(workers: SwitchyardConfig['server']['workers']): number {
  return workers === 'auto' ? availableParallelism() : workers;
}

/** This process's worker number when it is a cluster worker of the gateway, else undefined. */
export function workerId(): number | undefined {
  if (!cluster.isWorker) return undefined;
  const id = Number(process.env[workerIdVariable]);
  return Number.isInteger(id) && id > 0 ? id : undefined;
}

/** `server.workers` > 1 without Redis: what each worker keeps to itself. */
export function perWorkerStateWarning(config: SwitchyardConfig, workers: number): string | undefined {
  if (workers <= 1 || config.redis) return undefined;
  return `server.workers is ${workers} and there is no redis section: the response cache, request and token limits and budgets are per worker (each worker allows the full limit), like ${workers} replicas without Redis`;
}

/**
 * What node:cluster cannot do: workers share a listening socket by address and port, so with port 0 for both the
 * gateway and the admin listener the two would be one socket.
 */
export function workersConfigError(config: SwitchyardConfig, port: number): string | undefined {
  if (port === 0 && config.admin.port === 0)
    return 'server.workers > 1 needs a fixed port for server.port or admin.port: with 0 for both, the workers would share one socket for both listeners';
  return undefined;
}

/**
 * A loaded config as worker `id` runs it: its own audit file (one hash chain per worker), and a configured
 * `cluster.replicaId` suffixed `-w<id>`, since each worker is a replica of its own (with one id for all, their
 * shared-slot leases would collide in Redis and the fleet would be under-counted).
 */
export function workerConfig(loaded: SwitchyardConfig, id: number): SwitchyardConfig {
  let adapted = loaded;
  if (loaded.audit.enabled) adapted = { ...adapted, audit: { ...loaded.audit, path: workerAuditPath(loaded.audit.path, id) } };
  if (loaded.cluster.replicaId !== undefined) adapted = { ...adapted, cluster: { ...loaded.cluster, replicaId: `${loaded.cluster.replicaId}-w${id}` } };
  return adapted;
}

/** The audit file of worker `id`: `<name>.worker-<id><ext>`, one hash chain per worker (verify each file). */
export function workerAuditPath(path: string, id: number): string {
  const slash = path.lastIndexOf('/');
  const dot = path.lastIndexOf('.');
  return dot > slash + 1 ? `${path.slice(0, dot)}.worker-${id}${path.slice(dot)}` : `${path}.worker-${id}`;
}

function isMessage(value: unknown): value is Message {
  return typeof value === 'object' && value !== null && typeof (value as { swy?: unknown }).swy === 'string';
}

/**
 * Runs the primary: forks the workers, logs `switchyard listening` once all listen, restarts dead workers,
 * passes SIGTERM/SIGINT on and exits when the last worker has. Resolves once every worker listens.
 */
export async function runPrimary(config: SwitchyardConfig, logger: Logger, count: number, configFile?: string): Promise<void> {
  cluster.setupPrimary({ serialization: 'advanced' });
  const metrics = new ClusterMetrics(logger);
  const ids = new Map<Worker, { id: number; startedAt: number; listening: boolean }>();
  let stopping: NodeJS.Signals | undefined;
  let failures = 0;
  let crashStreak = 0;
  let listened = 0;
  let ready: (value: { url: string; adminUrl: string | undefined }) => void = () => {};
  let failed: (error: Error) => void = () => {};
  const allListening = new Promise<{ url: string; adminUrl: string | undefined }>((resolve, reject) => {
    ready = resolve;
    failed = reject;
  });
  let started = false;

  const fork = (id: number) => {
    const worker = cluster.fork({ [workerIdVariable]: String(id) });
    ids.set(worker, { id, startedAt: Date.now(), listening: false });
    worker.on('message', (message: unknown) => {
      if (!isMessage(message)) return;
      if (message.swy === 'listening') {
        const entry = ids.get(worker);
        if (entry) entry.listening = true;
        if (started) logger.info({ worker: id, pid: worker.process.pid }, 'worker restarted and listening');
        else if (++listened === count) {
          started = true;
          ready({ url: message.url, adminUrl: message.adminUrl });
        }
      } else if (message.swy === 'aggregate') {
        // Workers still starting are left out: they may not listen for IPC yet, and hold no figures.
        const serving = [...ids].filter(([, state]) => state.listening).map(([serving]) => serving);
        metrics.text(serving).then(
          (text) => send(worker, { swy: 'aggregated', id: message.id, text }),
          (error: Error) => send(worker, { swy: 'aggregated', id: message.id, error: error.message }),
        );
      } else if (message.swy === 'collected') {
        metrics.answer(worker, message.id, message.metrics);
      } else if (message.swy === 'reloaded') {
        for (const other of ids.keys()) if (other !== worker) send(other, { swy: 'reload' });
      }
    });
  };

  cluster.on('exit', (worker, code, signal) => {
    const entry = ids.get(worker);
    ids.delete(worker);
    metrics.retire(worker);
    if (!entry) return;
    if (stopping) {
      // Killed by the SIGTERM itself: it had not installed its handlers yet (still starting), so there was nothing to drain.
      if (code !== 0 && signal !== 'SIGTERM') failures++;
      logger.info({ worker: entry.id, pid: worker.process.pid, code, signal }, 'worker exited');
      if (ids.size === 0) {
        logger.info({ signal: stopping, failures }, 'all workers exited');
        process.exit(failures === 0 ? 0 : 1);
      }
      return;
    }
    if (!entry.listening && !started) {
      // It never served: the same config would fail again (a port in use, an unreadable certificate).
      failed(new Error(`worker ${entry.id} exited (code ${code}, signal ${signal}) before it listened; see its log above`));
      return;
    }
    crashStreak = Date.now() - entry.startedAt >= stableAfterMs ? 0 : crashStreak + 1;
    const delay = Math.min(backoffMaxMs, backoffFirstMs * 2 ** Math.max(0, crashStreak - 1));
    logger.error({ worker: entry.id, pid: worker.process.pid, code, signal, restartInMs: delay }, 'worker died unexpectedly: restarting it');
    setTimeout(() => {
      if (!stopping) fork(entry.id);
    }, delay).unref();
  });

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = signal;
    logger.info({ signal, workers: ids.size }, 'shutting down: passing the signal to every worker');
    if (ids.size === 0) process.exit(0);
    for (const worker of ids.keys()) worker.process.kill('SIGTERM');
    // A worker that hangs past its own grace period (plus time to flush and settle) is killed.
    const overdue = setTimeout(() => {
      for (const worker of ids.keys()) {
        logger.warn({ worker: ids.get(worker)?.id, pid: worker.process.pid }, 'worker did not exit after the grace period: killing it');
        worker.process.kill('SIGKILL');
      }
    }, config.server.shutdownGraceMs + 15_000);
    overdue.unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // A config reload reaches every worker; each re-reads the file itself (a refused file is logged by each).
  const reloadAll = (why: string) => {
    logger.info({ workers: ids.size }, `${why}: every worker reloads the config file`);
    for (const worker of ids.keys()) send(worker, { swy: 'reload' });
  };
  process.on('SIGHUP', () => reloadAll('SIGHUP'));
  if (configFile !== undefined && config.server.watchConfig) watchConfigFile(configFile, () => reloadAll('config file changed'));

  for (let id = 1; id <= count; id++) fork(id);
  try {
    const { url, adminUrl } = await allListening;
    logger.info({ url, ...(adminUrl ? { adminUrl } : {}), workers: count }, 'switchyard listening');
  } catch (error) {
    logger.fatal({ err: error }, 'a worker could not start: stopping');
    stopping = 'SIGTERM';
    for (const worker of ids.keys()) worker.process.kill('SIGKILL');
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 1_000).unref();
    throw error;
  }
}

function send(worker: Worker, message: Message): void {
  if (worker.isConnected()) worker.send(message);
}

/** The primary's side of /metrics: collects each worker's registry and merges them. */
class ClusterMetrics {
  private readonly logger: Logger;
  /** What each live worker answered last: used when it does not answer in time, and kept when it dies. */
  private readonly latest = new Map<Worker, MetricsJson>();
  /** Counters and histograms of workers that died, merged (they stay in the sums). */
  private retired: MetricsJson = [];
  /** Merges into `retired` run one after another, and a scrape waits for them. */
  private retiring: Promise<void> = Promise.resolve();
  private readonly pending = new Map<number, { worker: Worker; done: (metrics: MetricsJson | undefined) => void }>();
  private nextId = 1;

  constructor(logger: Logger) {
    this.logger = logger;
  }

  /** These workers' metrics merged (with those of workers that died), as Prometheus text. */
  async text(serving: Worker[]): Promise<string> {
    const workers = serving.filter((worker) => worker.isConnected());
    const answers = await Promise.all(workers.map((worker) => this.collect(worker)));
    const sets = answers.filter((metrics): metrics is MetricsJson => metrics !== undefined);
    await this.retiring;
    if (this.retired.length > 0) sets.push(this.retired);
    return AggregatorRegistry.aggregate(sets).metrics();
  }

  /** A worker's answer to a collect request. */
  answer(worker: Worker, id: number, metrics: MetricsJson): void {
    const request = this.pending.get(id);
    if (request?.worker !== worker) return;
    this.pending.delete(id);
    this.latest.set(worker, metrics);
    request.done(metrics);
  }

  /** Keeps a dead worker's counters and histograms (as last collected) in the sums. */
  retire(worker: Worker): void {
    const last = this.latest.get(worker);
    this.latest.delete(worker);
    for (const [id, request] of this.pending) {
      if (request.worker === worker) {
        this.pending.delete(id);
        request.done(undefined);
      }
    }
    if (!last) return;
    const monotonic = last.filter((metric) => (metric.type === 'counter' || metric.type === 'histogram') && metric.aggregator === 'sum');
    this.retiring = this.retiring
      .then(async () => {
        this.retired = (await AggregatorRegistry.aggregate([this.retired, monotonic]).getMetricsAsJSON()) as unknown as MetricsJson;
      })
      .catch((error: Error) => this.logger.warn({ err: error }, 'could not keep the metrics of a worker that exited'));
  }

  private collect(worker: Worker): Promise<MetricsJson | undefined> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.logger.warn({ pid: worker.process.pid }, 'a worker did not send its metrics in time: using what it sent last');
        resolve(this.latest.get(worker));
      }, collectTimeoutMs);
      this.pending.set(id, {
        worker,
        done: (metrics) => {
          clearTimeout(timer);
          resolve(metrics);
        },
      });
      send(worker, { swy: 'collect', id });
    });
  }
}

/**
 * The worker's side: answers the primary's collect requests from `registry`, and returns the function the
 * /metrics routes call to get the merged text from the primary.
 */
export function workerMetrics(registry: Registry): () => Promise<string> {
  const waiting = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  process.on('message', (message: unknown) => {
    if (!isMessage(message)) return;
    if (message.swy === 'collect') {
      registry.getMetricsAsJSON().then((metrics) => process.send?.({ swy: 'collected', id: message.id, metrics: metrics as unknown as MetricsJson } satisfies Message));
    } else if (message.swy === 'aggregated') {
      const request = waiting.get(message.id);
      if (!request) return;
      waiting.delete(message.id);
      if (message.text !== undefined) request.resolve(message.text);
      else request.reject(new Error(`the primary could not merge the workers' metrics: ${message.error ?? 'unknown error'}`));
    }
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error("the primary did not answer with the workers' metrics in time"));
      }, aggregateTimeoutMs);
      waiting.set(id, {
        resolve: (text) => {
          clearTimeout(timer);
          resolve(text);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      process.send?.({ swy: 'aggregate', id } satisfies Message);
    });
}

/** Tells the primary this worker listens. */
export function announceListening(url: string, adminUrl: string | undefined): void {
  process.send?.({ swy: 'listening', url, adminUrl } satisfies Message);
}

/**
 * The worker's side of config reload: the primary's `reload` message re-reads the file here, and a reload this
 * worker did through POST /admin/reload is passed on, so every worker runs the same config.
 */
export function workerReloads(state: { reloadFromFile: (() => Promise<unknown>) | undefined }, logger: Logger): void {
  const fromFile = state.reloadFromFile;
  if (fromFile === undefined) return;
  process.on('message', (message: unknown) => {
    if (!isMessage(message) || message.swy !== 'reload') return;
    fromFile().catch((error: unknown) => logger.error({ problems: reloadProblems(error) }, 'config reload refused: the running configuration stays'));
  });
  state.reloadFromFile = async () => {
    const result = await fromFile();
    process.send?.({ swy: 'reloaded' } satisfies Message);
    return result;
  };
}
