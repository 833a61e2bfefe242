/**
 * Background health probes, one loop per backend, with the runtime's own
 * semantics (see kinds/). Passive signals from real traffic (connection
 * refused) mark a backend down at once; the probe brings it back.
 */
import type { Logger } from 'pino';
import type { Backend, Registry } from './registry.ts';

/** Probes a backend once and returns the verdict, never throwing. */
export async function probeBackend(backend: Backend): Promise<{ verdict: 'up' | 'loading' | 'down'; detail: string }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), backend.config.health.timeoutMs);
  try {
    const headers: Record<string, string> = {};
    if (backend.kind.name === 'openai' && backend.authorization) headers.authorization = backend.authorization;
    const response = await backend.dispatcher.request({
      origin: backend.origin,
      path: backend.basePath + backend.kind.healthPath,
      method: 'GET',
      headers,
      signal: controller.signal,
    });
    const body = await response.body.text();
    const verdict = backend.kind.interpretHealth(response.statusCode, body);
    return { verdict, detail: `HTTP ${response.statusCode}` };
  } catch (error) {
    const code = (error as { code?: string }).code;
    return { verdict: 'down', detail: controller.signal.aborted ? 'probe timed out' : (code ?? (error as Error).message) };
  } finally {
    clearTimeout(timer);
  }
}

/** Applies a probe verdict with the configured thresholds. */
export function recordHealth(backend: Backend, verdict: 'up' | 'loading' | 'down', detail: string, now: number): void {
  backend.healthCheckedAt = now;
  if (verdict === 'up') {
    backend.healthFailures = 0;
    backend.healthSuccesses++;
    if (backend.health !== 'up' && (backend.health === 'unknown' || backend.healthSuccesses >= backend.config.health.healthyThreshold)) {
      backend.health = 'up';
    }
    return;
  }
  backend.healthSuccesses = 0;
  backend.healthFailures++;
  backend.lastError = detail;
  if (verdict === 'loading') backend.health = 'loading';
  else if (backend.health === 'unknown' || backend.healthFailures >= backend.config.health.unhealthyThreshold) backend.health = 'down';
}

/** Marks a backend down after real traffic could not connect to it. */
export function markUnreachable(backend: Backend, detail: string): void {
  backend.health = 'down';
  backend.healthSuccesses = 0;
  backend.lastError = detail;
}

/** Runs probe loops until stopped. */
export class HealthMonitor {
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private readonly registry: Registry;
  private readonly logger: Logger;
  private readonly now: () => number;

  constructor(registry: Registry, logger: Logger, now: () => number = Date.now) {
    this.registry = registry;
    this.logger = logger;
    this.now = now;
  }

  /** Probes every backend once (awaited), then keeps probing in the background. */
  async start(): Promise<void> {
    await Promise.all([...this.registry.backends.values()].map((backend) => this.probe(backend)));
    for (const backend of this.registry.backends.values()) this.schedule(backend);
  }

  private schedule(backend: Backend): void {
    if (this.stopped) return;
    const timer = setTimeout(async () => {
      this.timers.delete(timer);
      await this.probe(backend);
      this.schedule(backend);
    }, backend.config.health.intervalMs);
    timer.unref();
    this.timers.add(timer);
  }

  private async probe(backend: Backend): Promise<void> {
    const before = backend.health;
    const { verdict, detail } = await probeBackend(backend);
    if (this.stopped) return;
    recordHealth(backend, verdict, detail, this.now());
    if (backend.health !== before) {
      this.logger.info({ backend: backend.id, health: backend.health, previous: before, detail }, 'backend health changed');
    }
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }
}
