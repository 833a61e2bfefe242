/**
 * Health probes with each runtime's own semantics (see kinds/). Passive
 * signals from real traffic (connection refused) mark a backend down at once;
 * the next probe brings it back.
 */
import type { Backend } from './registry.ts';

/** Probes a backend once and returns the verdict, never throwing. */
export async function probeBackend(backend: Backend): Promise<{ verdict: 'up' | 'loading' | 'down'; detail: string }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), backend.config.health.timeoutMs);
  try {
    const probe = backend.kind.health;
    const headers: Record<string, string> = {};
    if (probe.sendsKey && backend.authorization) headers.authorization = backend.authorization;
    const response = await backend.dispatcher.request({
      origin: backend.origin,
      path: backend.basePath + probe.path,
      method: 'GET',
      headers,
      signal: controller.signal,
    });
    const body = await response.body.text();
    const verdict = probe.interpret(response.statusCode, body);
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
