/**
 * Background loops that keep each backend's live state fresh: health probes,
 * /metrics scrapes (sub-second by default) and model discovery. The hot path
 * only reads the fields these loops write.
 */
import type { Logger } from 'pino';
import { probeBackend } from './health.ts';
import type { Backend, BackendRegistry } from './registry.ts';
import { discoverModels, scrapeLoad } from './scrape.ts';

export class BackendMonitor {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly watched = new Set<Backend>();
  private stopped = false;
  private readonly registry: BackendRegistry;
  private readonly logger: Logger;
  private readonly now: () => number;

  constructor(registry: BackendRegistry, logger: Logger, now: () => number = Date.now) {
    this.registry = registry;
    this.logger = logger;
    this.now = now;
  }

  /** Runs every loop once (awaited, so the first requests see real state), then keeps them going. */
  async start(): Promise<void> {
    await this.watch([...this.registry.byId.values()]);
  }

  /**
   * Starts the loops of these backends (at start, or added by a config reload): one round awaited, so a new
   * backend joins the routes with its health, models and load known. Intervals are read from the backend's
   * config at each turn, so a reload that changes them takes effect at the next one.
   */
  async watch(backends: readonly Backend[]): Promise<void> {
    for (const backend of backends) this.watched.add(backend);
    await Promise.all(
      backends.map((backend) =>
        Promise.all([this.probe(backend), discoverModels(backend, this.now), backend.config.scrape.intervalMs > 0 ? scrapeLoad(backend, this.now) : undefined]),
      ),
    );
    for (const backend of backends) {
      this.every(
        backend,
        () => backend.config.health.intervalMs,
        () => this.probe(backend),
      );
      this.every(
        backend,
        () => backend.config.scrape.intervalMs,
        () => scrapeLoad(backend, this.now),
      );
      this.every(
        backend,
        () => backend.config.discoveryIntervalMs,
        () => discoverModels(backend, this.now),
      );
    }
  }

  /** Stops the loops of backends a config reload removed (at their next turn). */
  unwatch(backends: readonly Backend[]): void {
    for (const backend of backends) this.watched.delete(backend);
  }

  private every(backend: Backend, interval: () => number, task: () => Promise<void>): void {
    const run = () => {
      const intervalMs = interval();
      if (this.stopped || intervalMs <= 0 || !this.watched.has(backend)) return;
      const timer = setTimeout(async () => {
        this.timers.delete(timer);
        if (!this.watched.has(backend)) return;
        await task();
        run();
      }, intervalMs);
      timer.unref();
      this.timers.add(timer);
    };
    run();
  }

  private async probe(backend: Backend): Promise<void> {
    const before = backend.health;
    const { verdict, detail } = await probeBackend(backend);
    if (this.stopped) return;
    backend.recordProbe(verdict, detail, this.now());
    if (backend.health !== before) {
      this.logger.info({ backend: backend.id, health: backend.health, previous: before, detail }, 'backend health changed');
      if (backend.health === 'up' && before !== 'unknown') void discoverModels(backend, this.now);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }
}
