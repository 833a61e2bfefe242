/** Metrics of replicas acting as one (config `cluster`); read when /metrics is scraped, nothing on the hot path. */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { BackendRegistry } from '../backends/registry.ts';
import type { Router } from '../routing/router.ts';
import type { ClusterState } from './cluster.ts';

export function registerClusterMetrics(registry: Registry, cluster: ClusterState, backends: BackendRegistry, router: Router): void {
  const registers = [registry];
  const list = [...backends.byId.values()];
  const { slots, flights } = cluster;
  new Gauge({
    name: 'switchyard_cluster_shared',
    help: '1 while backend slots are shared by the fleet through Redis, 0 while Redis is unreachable and maxConcurrency holds per replica',
    registers,
    collect() {
      this.set(slots.shared ? 1 : 0);
    },
  });
  new Gauge({
    name: 'switchyard_cluster_load_staleness_seconds',
    help: "Age of the last complete read of the fleet's in-flight counts (bounded by cluster.loadRefreshMs while Redis answers)",
    registers,
    collect() {
      if (slots.countedAt !== 0) this.set((Date.now() - slots.countedAt) / 1000);
    },
  });
  new Gauge({
    name: 'switchyard_backend_fleet_inflight',
    help: 'Requests in flight to each backend from every replica, as this replica routes on them (its own now + the others as last read)',
    labelNames: ['backend'],
    registers,
    collect() {
      const now = Date.now();
      for (const backend of list) this.set({ backend: backend.id }, router.inflightOf(backend, now));
    },
  });
  const counter = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  new Gauge({
    name: 'switchyard_cluster_slot_spares',
    help: 'Spare leases this replica keeps for its next requests (live in Redis, taken without a round trip; only while a backend is below half its limit fleet-wide)',
    registers,
    collect() {
      this.set(slots.spares());
    },
  });
  counter('switchyard_cluster_slot_spare_hits_total', 'Slots taken from a spare lease of this replica, without a Redis round trip', () => slots.stats.spareHits);
  counter('switchyard_cluster_slot_fallbacks_total', 'Slots taken per replica (no lease) because Redis was unreachable', () => slots.stats.fallbacks);
  counter(
    'switchyard_cluster_leases_recreated_total',
    'Leases a renewal found gone (expired while this replica could not reach Redis, or Redis restarted) and added again',
    () => slots.stats.recreated,
  );
  counter(
    'switchyard_cluster_redis_errors_total',
    'Failed Redis calls of shared slots and single flight (each falls back as documented)',
    () => slots.stats.errors + flights.stats.errors,
  );
  new Counter({
    name: 'switchyard_cluster_flights_total',
    help: 'Cacheable misses by their part in cross-replica single flight: leader (went upstream) or follower (waited for another replica)',
    labelNames: ['role'],
    registers,
    collect() {
      this.reset();
      this.inc({ role: 'leader' }, flights.stats.led);
      this.inc({ role: 'follower' }, flights.stats.followed);
    },
  });
}
