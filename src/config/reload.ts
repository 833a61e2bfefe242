/**
 * What a config reload may change while the gateway runs. Backends, models,
 * tenants, zones, the guard, the config file's API keys and the default
 * limits are swapped at once; the rest is bound to things built at startup
 * (listeners, the Redis connection, shared slots, the cache store, the audit
 * chain, the metric registry, the tracer, the JWT verifier) and keeps its
 * running value until a restart. The reload says which of those changed, so
 * nothing is ignored silently.
 */
import type { SwitchyardConfig } from './schema.ts';

/** Top-level sections that take effect only at startup. */
const RESTART_ONLY = ['server', 'admin', 'redis', 'cluster', 'cache', 'logging', 'metrics', 'audit', 'tracing', 'isolation', 'responses'] as const;

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** The config to run after a reload: `next`, with the restart-only parts of `running`; and which of those changed. */
export function mergeReload(running: SwitchyardConfig, next: SwitchyardConfig): { applied: SwitchyardConfig; restartRequired: string[] } {
  const restartRequired: string[] = [];
  const applied: SwitchyardConfig = { ...next };
  for (const section of RESTART_ONLY) {
    if (same(running[section], next[section])) continue;
    restartRequired.push(section);
    (applied as Record<string, unknown>)[section] = running[section];
  }
  // auth: the keys listed in the file reload; the mode and the JWT verifier are built at startup
  const { keys: _runningKeys, ...runningAuth } = running.auth;
  const { keys, ...nextAuth } = next.auth;
  if (!same(runningAuth, nextAuth)) {
    restartRequired.push(
      ...Object.keys({ ...runningAuth, ...nextAuth })
        .filter((field) => !same(runningAuth[field as keyof typeof runningAuth], nextAuth[field as keyof typeof nextAuth]))
        .map((field) => `auth.${field}`),
    );
    applied.auth = { ...running.auth, keys };
  }
  // limits: the defaults reload; what to do when Redis fails is wired into the limiters at startup
  if (running.limits.onRedisError !== next.limits.onRedisError) {
    restartRequired.push('limits.onRedisError');
    applied.limits = { ...next.limits, onRedisError: running.limits.onRedisError };
  }
  return { applied, restartRequired };
}
