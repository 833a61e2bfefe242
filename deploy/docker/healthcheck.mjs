// Container health check without curl: `node healthcheck.mjs [URL]` exits 0 when
// URL answers 2xx within the timeout, 1 otherwise. The default URL is the
// gateway's liveness endpoint on $PORT (8080), which is what the Dockerfile's
// HEALTHCHECK runs; the simulators in docker-compose.yml pass their own /health.
const url = process.argv[2] ?? process.env.SWITCHYARD_HEALTH_URL ?? `http://127.0.0.1:${process.env.PORT || 8080}/healthz`;
const timeoutMs = Number(process.env.SWITCHYARD_HEALTH_TIMEOUT_MS || 3000);

try {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  await response.body?.cancel();
  if (!response.ok) console.error(`health check: ${url} answered ${response.status}`);
  process.exit(response.ok ? 0 : 1);
} catch (error) {
  console.error(`health check: ${url} failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
