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
    const backends = [...this.registry.byId.values()];
    await Promise.all(
      backends.map((backend) =>
        Promise.all([this.probe(backend), discoverModels(backend, this.now), backend.config.scrape.intervalMs > 0 ? scrapeLoad(backend, this.now) : undefined]),
      ),
    );
    for (const backend of backends) {
      this.every(backend.config.health.intervalMs, () => this.probe(backend));
      this.every(backend.config.scrape.intervalMs, () => scrapeLoad(backend, this.now));
      this.every(backend.config.discoveryIntervalMs, () => discoverModels(backend, this.now));
    }
  }

  private every(intervalMs: number, task: () => Promise<void>): void {
    if (intervalMs <= 0) return;
    const run = () => {
      if (this.stopped) return;
      const timer = setTimeout(async () => {
        this.timers.delete(timer);
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
