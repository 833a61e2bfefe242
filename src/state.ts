/**
 * The gateway state the plugins share, as a type of its own: app.ts builds
 * it, plugins and surfaces read it, and none of them imports app.ts (which
 * imports them).
 */
import type { FastifyRequest } from 'fastify';
import type { Registry as PromRegistry } from 'prom-client';
import type { BackendRegistry } from './backends/registry.ts';
import type { CacheEntry } from './cache/entry.ts';
import type { ResilientCache } from './cache/resilient.ts';
import type { SingleFlight } from './cache/single-flight.ts';
import type { ClusterState } from './cluster/cluster.ts';
import type { SwitchyardConfig } from './config/schema.ts';
import type { Limits } from './limits/create.ts';
import type { GatewayMetrics } from './metrics/metrics.ts';
import type { InFlight } from './proxy/in-flight.ts';
import type { TenantSalts } from './proxy/isolation.ts';
import type { RequestRecord } from './proxy/record.ts';
import type { RedisClient } from './redis/client.ts';
import type { Router } from './routing/router.ts';
import type { ZonePolicy } from './routing/zones.ts';
import type { Guard } from './guard/policy.ts';

/** What a config reload changed. */
export interface ReloadResult {
  backends: { added: string[]; removed: string[]; updated: string[] };
  models: number;
  /** Changed sections that take effect only after a restart (their running values stay until then). */
  restartRequired: string[];
}

/** Gateway state shared by the plugins. */
export interface SwitchyardState {
  config: SwitchyardConfig;
  backends: BackendRegistry;
  router: Router;
  promRegistry: PromRegistry;
  /** The text /metrics serves: promRegistry's, or with server.workers every worker's merged. */
  metricsText(): Promise<string>;
  metrics: GatewayMetrics;
  cache: ResilientCache;
  /** Concurrent identical cacheable requests share one upstream call. */
  flights: SingleFlight<CacheEntry>;
  /** Replicas acting as one through Redis (config `cluster`); undefined without Redis or when off. */
  cluster: ClusterState | undefined;
  limits: Limits;
  redis: RedisClient | undefined;
  shuttingDown: boolean;
  /** Requests being forwarded: a shutdown past its grace period ends them with server_shutting_down. */
  inFlight: InFlight;
  /** Per-tenant prefix-cache salts for models with `isolation: tenant`. */
  salts: TenantSalts;
  /** Which data zones each request may reach. */
  zones: ZonePolicy;
  /** The PII and secret guard; undefined when off. */
  guard: Guard | undefined;
  /**
   * Applies a reloaded, validated config (POST /admin/reload, SIGHUP): backends, models, tenants, zones, guard,
   * auth.keys and limits change at once; sections that need a restart keep their running values and are named
   * in the result. Throws (with `path: message` problems) when a check refuses it; the running config stays.
   */
  reload(next: SwitchyardConfig): Promise<ReloadResult>;
  /** Checks a reloaded config must pass before anything changes (plugins add theirs); each throws to refuse. */
  reloadChecks: Array<(config: SwitchyardConfig) => void>;
  /** Reads the config file the gateway started from and reloads it; undefined when it started without one. */
  reloadFromFile: (() => Promise<ReloadResult>) | undefined;
  /**
   * Logs the request's one line and records its metrics. Fastify's onResponse calls it for answers sent
   * through Fastify; the inference pipeline calls it for answers it wrote past Fastify (see raw-reply.ts).
   */
  report(request: FastifyRequest, statusCode?: number): void;
}

declare module 'fastify' {
  interface FastifyInstance {
    switchyard: SwitchyardState;
  }
  interface FastifyRequest {
    record: RequestRecord;
  }
}
