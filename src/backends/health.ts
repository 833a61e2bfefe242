/**
 * Health probes with each runtime's own semantics (see kinds/). The verdict
 * goes to the backend's own state machine (Backend.recordProbe), as do the
 * passive signals from real traffic (Backend.markUnreachable).
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
