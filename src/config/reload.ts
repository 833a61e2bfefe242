/**
 * What a config reload may change while the gateway runs, and applying it
 * (reloader: the app's state.reload). Backends, models,
 * tenants, zones, the guard, the config file's API keys and the default
 * limits are swapped at once; the rest is bound to things built at startup
 * (listeners, the Redis connection, shared slots, the cache store, the audit
 * chain, the metric registry, the tracer, the JWT verifier) and keeps its
 * running value until a restart. The reload says which of those changed, so
 * nothing is ignored silently.
 */
import type { Logger } from 'pino';
import type { AuditFields } from '../audit/record.ts';
import type { BackendMonitor } from '../backends/monitor.ts';
import type { BackendRegistry } from '../backends/registry.ts';
import type { ClusterState } from '../cluster/cluster.ts';
import { Guard } from '../guard/policy.ts';
import { MemoryKeyStore, recordsFromConfig } from '../limits/key-store.ts';
import type { LayeredKeyStore } from '../limits/layered-key-store.ts';
import { registerSecrets } from '../proxy/sanitise.ts';
import { ZonePolicy } from '../routing/zones.ts';
import type { ReloadResult, SwitchyardState } from '../state.ts';
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

/** The parts of a built app a reload changes. */
export interface ReloadParts {
  state: SwitchyardState;
  backends: BackendRegistry;
  cluster: ClusterState | undefined;
  monitor: BackendMonitor;
  keys: LayeredKeyStore;
  logger: Logger;
  /** Probe new backends before answering (the app's healthChecks). */
  probe: boolean;
  audit: { write(fields: AuditFields): void } | undefined;
  /** Told the applied config, for what the app keeps derived from it (tenants' request log levels). */
  applied(config: SwitchyardConfig): void;
}

/** state.reload: applies reloaded configs one at a time, in the order asked. */
export function reloader(parts: ReloadParts): (next: SwitchyardConfig) => Promise<ReloadResult> {
  let reloading: Promise<unknown> = Promise.resolve();
  return (next) => {
    const run = reloading.then(() => applyReload(parts, next));
    reloading = run.catch(() => undefined);
    return run;
  };
}

async function applyReload(parts: ReloadParts, next: SwitchyardConfig): Promise<ReloadResult> {
  const { state, backends, monitor } = parts;
  const { applied, restartRequired } = mergeReload(state.config, next);
  for (const check of state.reloadChecks) check(applied);
  // Everything that can refuse the config is built before anything changes.
  const guard = Guard.create(applied);
  const zones = new ZonePolicy(applied);
  const keys = new MemoryKeyStore(recordsFromConfig(applied.auth.keys));
  registerSecrets(applied.backends.map((backend) => backend.apiKey));
  // The swap: synchronous, so every request sees the old config or the new one, never a mix.
  state.config = applied;
  const changes = backends.reconfigure(applied);
  parts.cluster?.slots.configure(new Map(applied.backends.map((backend) => [backend.id, backend.maxConcurrency])));
  state.guard = guard;
  state.zones = zones;
  parts.keys.replaceConfigured(keys);
  parts.applied(applied);
  // Removed backends finish the requests they hold (their pools close after); new ones are probed before we answer.
  monitor.unwatch(changes.removed);
  if (parts.probe) await monitor.watch(changes.added);
  const ids = (list: readonly { id: string }[]) => list.map((backend) => backend.id);
  const result: ReloadResult = {
    backends: { added: ids(changes.added), removed: ids(changes.removed), updated: ids(changes.updated) },
    models: applied.models.length,
    restartRequired,
  };
  parts.logger.info(result, 'config reloaded');
  if (restartRequired.length > 0) parts.logger.warn({ sections: restartRequired }, 'config reload: these changes take effect after a restart');
  const listed = (list: string[]) => list.join(', ') || 'none';
  parts.audit?.write({
    time: new Date().toISOString(),
    type: 'admin',
    action: 'config.reload',
    detail: `${applied.backends.length} backends (added ${listed(result.backends.added)}; removed ${listed(result.backends.removed)}; updated ${listed(result.backends.updated)}), ${applied.models.length} models${restartRequired.length > 0 ? `; after restart: ${restartRequired.join(', ')}` : ''}`,
  });
  return result;
}
