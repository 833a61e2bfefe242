/**
 * The one configuration schema. The TypeScript type derives from it; defaults
 * live here; `config/switchyard.example.yaml` documents every field.
 */
import { Type, type Static, type TOptional } from '@sinclair/typebox';
import { backendKindNames } from '../backends/kinds/index.ts';
import { AuditSchema } from '../audit/config.ts';
import { TracingSchema } from '../tracing/config.ts';
import { CacheConfigSchema, ModelCacheSchema, TenantCacheModeSchema } from '../cache/config.ts';
import { GuardActionsSchema, GuardSchema } from '../guard/config.ts';
import { AuthConfigSchema, LimitsConfigSchema } from '../limits/config.ts';
import { RedisConfigSchema } from '../redis/config.ts';
import { ClusterConfigSchema } from '../cluster/config.ts';
import { policyNames, type PolicyName } from '../routing/types.ts';
import { surfaceNames, type SurfaceName } from '../surfaces/names.ts';

const Milliseconds = (defaultValue: number, description: string) => Type.Integer({ minimum: 0, default: defaultValue, description });

export const TimeoutsSchema = Type.Object(
  {
    connectMs: Milliseconds(5_000, 'TCP/TLS connect timeout'),
    firstByteMs: Milliseconds(120_000, 'time allowed until the first byte of the answer (includes queueing)'),
    idleMs: Milliseconds(60_000, 'longest silence allowed between two chunks of an answer'),
    totalMs: Milliseconds(900_000, 'longest time one attempt may take, end to end'),
  },
  { additionalProperties: false, default: {} },
);

export const HealthSchema = Type.Object(
  {
    intervalMs: Milliseconds(5_000, 'time between health probes'),
    timeoutMs: Milliseconds(2_000, 'probe timeout'),
    unhealthyThreshold: Type.Integer({ minimum: 1, default: 2 }),
    healthyThreshold: Type.Integer({ minimum: 1, default: 1 }),
  },
  { additionalProperties: false, default: {} },
);

export const ScrapeSchema = Type.Object(
  {
    intervalMs: Milliseconds(1_000, 'time between /metrics scrapes; 0 disables scraping'),
    timeoutMs: Milliseconds(800, 'scrape timeout'),
    staleAfterMs: Milliseconds(3_000, 'scraped figures older than this are ignored'),
  },
  { additionalProperties: false, default: {} },
);

export const CircuitSchema = Type.Object(
  {
    consecutiveFailures: Type.Integer({ minimum: 1, default: 5 }),
    errorRate: Type.Number({ minimum: 0, maximum: 1, default: 0.5 }),
    minRequests: Type.Integer({ minimum: 1, default: 20 }),
    windowSize: Type.Integer({ minimum: 1, default: 50 }),
    cooldownMs: Milliseconds(10_000, 'time the circuit stays open before a probe request'),
  },
  { additionalProperties: false, default: {} },
);

export const QueueSchema = Type.Object(
  {
    maxSize: Type.Integer({ minimum: 0, default: 256, description: 'requests that may wait for a free slot of this backend' }),
    timeoutMs: Milliseconds(30_000, 'longest wait in the gateway queue'),
  },
  { additionalProperties: false, default: {} },
);

export const CostSchema = Type.Object(
  {
    inputPer1M: Type.Optional(Type.Number({ minimum: 0 })),
    outputPer1M: Type.Optional(Type.Number({ minimum: 0 })),
    perHour: Type.Optional(Type.Number({ minimum: 0 })),
  },
  { additionalProperties: false, default: {} },
);

/** `backends[].prior`: what the router assumes of a backend until its first answers are measured (conservative, never 0). */
export const PriorSchema = Type.Object(
  {
    ttftMs: Type.Number({ minimum: 1, default: 1000, description: 'time to first token of an idle backend for a 1,000-token prompt, assumed until measured' }),
    tokensPerSecond: Type.Number({ exclusiveMinimum: 0, default: 20, description: 'output tokens per second of one slot, assumed until measured' }),
  },
  { additionalProperties: false, default: {} },
);

const SurfaceMode = Type.Union([Type.Literal('native'), Type.Literal('translate'), Type.Literal('off')]);

/** `backends[].surfaces`: how this backend serves each API surface, over what its kind serves natively. */
export const SurfacesSchema = Type.Object(
  Object.fromEntries(surfaceNames.map((name) => [name, Type.Optional(SurfaceMode)])) as Record<SurfaceName, TOptional<typeof SurfaceMode>>,
  {
    additionalProperties: false,
    default: {},
    description:
      'per surface: native (send it on its own path), translate (onto chat completions, where the surface has a translation), off (never send it here); unset: native where the kind serves it, else translate, learnt from a 404',
  },
);

export const BackendSchema = Type.Object(
  {
    id: Type.String({ minLength: 1, pattern: '^[A-Za-z0-9_.-]+$' }),
    // One literal per registered backend kind (src/backends/kinds/index.ts).
    kind: Type.Union(backendKindNames.map((name) => Type.Literal(name))),
    url: Type.String({ pattern: '^https?://' }),
    apiKey: Type.Optional(Type.String()),
    zone: Type.String({
      minLength: 1,
      default: 'default',
      description: 'data zone the backend is in (e.g. onprem, partner, external); requests go only to zones they may use (see zones)',
    }),
    maxConcurrency: Type.Integer({ minimum: 1, default: 256 }),
    streamUpstream: Type.Union([Type.Literal('auto'), Type.Literal('always'), Type.Literal('never')], {
      default: 'auto',
      description: 'stream from the backend even for non-streaming clients (auto: llama.cpp only)',
    }),
    timeouts: TimeoutsSchema,
    maxAnswerBytes: Type.Integer({
      minimum: 1024,
      default: 64 * 1024 * 1024,
      description: 'largest answer held whole (JSON, or a stream assembled for a non-streaming client); larger fails with 502',
    }),
    maxEventBytes: Type.Integer({
      minimum: 1024,
      default: 4 * 1024 * 1024,
      description: 'largest single event (or line) of a relayed stream; larger ends the stream with an error',
    }),
    health: HealthSchema,
    scrape: ScrapeSchema,
    circuit: CircuitSchema,
    queue: QueueSchema,
    discoveryIntervalMs: Milliseconds(60_000, 'time between /v1/models discoveries'),
    loadReport: Type.Boolean({ default: false, description: "ask for the runtime's per-response load report (vLLM's endpoint-load-metrics); ignored by kinds without one" }),
    contextLength: Type.Optional(Type.Integer({ minimum: 1, description: 'context window, when the runtime does not report it' })),
    slots: Type.Optional(Type.Integer({ minimum: 1, description: 'parallel slots, when the runtime does not report them' })),
    cost: CostSchema,
    prior: PriorSchema,
    surfaces: SurfacesSchema,
  },
  { additionalProperties: false },
);

export const TargetSchema = Type.Object(
  {
    backend: Type.String({ minLength: 1 }),
    model: Type.String({ minLength: 1 }),
    weight: Type.Number({ minimum: 0, default: 1 }),
  },
  { additionalProperties: false },
);

const Policy = (defaultValue?: PolicyName) =>
  Type.Union(
    policyNames.map((name) => Type.Literal(name)),
    defaultValue ? { default: defaultValue } : {},
  );

function IsolationMode(description: string, fallback?: 'none' | 'tenant') {
  return Type.Union([Type.Literal('none'), Type.Literal('tenant')], { description, ...(fallback ? { default: fallback } : {}) });
}

/** A tenant's data policy (`tenants.<name>`): what is kept of its requests, and how much of them is logged. */
export const TenantPolicySchema = Type.Object(
  {
    cache: TenantCacheModeSchema,
    responses: Type.Optional(
      Type.Object(
        {
          store: Type.Optional(Type.Boolean({ description: 'false: never keep a Responses answer, even one sent with store: true' })),
          storeTtlSeconds: Type.Optional(Type.Integer({ minimum: 1, description: "how long this tenant's stored responses are kept; unset: responses.storeTtlSeconds" })),
        },
        { additionalProperties: false },
      ),
    ),
    guard: Type.Optional(GuardActionsSchema),
    allowedZones: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: "zones this tenant's requests may reach (unset: every zone); a key's own zones take precedence" }),
    ),
    logging: Type.Optional(
      Type.Object(
        {
          requests: Type.Optional(
            Type.Union([Type.Literal('info'), Type.Literal('debug'), Type.Literal('off')], {
              description: "level of this tenant's per-request log line (info: as everyone; debug: only when logging.level is debug; off: none)",
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/** A data zone (`zones.<name>`): where backends run, and whether sensitive requests may go there. */
export const ZoneSchema = Type.Object(
  {
    sensitive: Type.Optional(Type.Boolean({ description: 'requests flagged sensitive (by the guard) may go to backends in this zone (default false)' })),
    guard: Type.Optional(GuardActionsSchema),
  },
  { additionalProperties: false },
);

/** Prefix-cache isolation between tenants (vLLM/SGLang cache_salt, llama.cpp cache_prompt: false). */
export const IsolationSchema = Type.Object(
  {
    mode: IsolationMode("none: tenants share the runtimes' prefix caches; tenant: each tenant's requests reuse only its own", 'none'),
    secret: Type.Optional(
      Type.String({ minLength: 16, description: 'key the per-tenant salts derive from (use ${ENV}; the same on every replica); required when a model isolates' }),
    ),
  },
  { additionalProperties: false, default: {} },
);

export const ModelSchema = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    aliases: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
    targets: Type.Array(TargetSchema, { minItems: 1 }),
    policy: Policy('least-loaded'),
    allowedPolicies: Type.Optional(Type.Array(Policy(), { description: 'policies x-switchyard-policy may pick (default: all)' })),
    slo: Type.Object({ ttftMs: Type.Optional(Type.Integer({ minimum: 1 })), tpotMs: Type.Optional(Type.Number({ minimum: 0 })) }, { additionalProperties: false, default: {} }),
    onSloMiss: Type.Union([Type.Literal('fallback'), Type.Literal('reject')], { default: 'fallback' }),
    costWeight: Type.Number({ minimum: 0, maximum: 1, default: 0.5, description: 'balanced: weight of cost against latency' }),
    affinity: Type.Object(
      {
        enabled: Type.Boolean({ default: false }),
        prefixMessages: Type.Integer({ minimum: 1, default: 2, description: 'leading messages (system prompt first) that form the key' }),
        prefixChars: Type.Integer({ minimum: 16, default: 4096, description: 'characters of the prefix that form the key' }),
        loadFactor: Type.Number({ minimum: 1, default: 1.25, description: 'bounded load: skip the affinity backend above this multiple of average load' }),
      },
      { additionalProperties: false, default: {} },
    ),
    retries: Type.Integer({ minimum: 0, maximum: 10, default: 2 }),
    deadlineMs: Milliseconds(0, 'total time for all attempts before the answer began; 0 = only per-attempt timeouts'),
    ownedBy: Type.String({ default: 'switchyard' }),
    cache: ModelCacheSchema,
    isolation: Type.Optional(IsolationMode('prefix-cache isolation for this model; unset: isolation.mode')),
  },
  { additionalProperties: false },
);

/** A client certificate's identity (`server.tls.clients.<subject CN>`): it acts as an API key with these fields. */
export const TlsClientSchema = Type.Object(
  {
    tenant: Type.String({ minLength: 1, description: "the certificate holder's tenant" }),
    models: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'allowed public models (globs; default all)' })),
    zones: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'data zones its requests may reach' })),
  },
  { additionalProperties: false },
);

/** TLS on the gateway's own listener, and client certificates (mutual TLS). */
export const TlsSchema = Type.Object(
  {
    certFile: Type.String({ minLength: 1, description: 'server certificate chain (PEM)' }),
    keyFile: Type.String({ minLength: 1, description: 'its private key (PEM)' }),
    clientCaFile: Type.Optional(Type.String({ minLength: 1, description: 'CA that signs client certificates (PEM); enables mutual TLS' })),
    clientCert: Type.Union([Type.Literal('optional'), Type.Literal('required')], {
      default: 'optional',
      description: 'with clientCaFile: required refuses handshakes without a valid client certificate; optional verifies one when sent',
    }),
    clients: Type.Optional(
      Type.Record(Type.String({ minLength: 1 }), TlsClientSchema, {
        description: 'client certificates by subject CN: a verified certificate listed here identifies its holder (tenant, models, zones) instead of an API key',
      }),
    ),
  },
  { additionalProperties: false },
);

export const ServerSchema = Type.Object(
  {
    host: Type.String({ default: '127.0.0.1' }),
    port: Type.Integer({ minimum: 0, maximum: 65_535, default: 8080 }),
    bodyLimitBytes: Type.Integer({ minimum: 1024, default: 32 * 1024 * 1024, description: 'largest request body (413 beyond it)' }),
    maxInflightBodyBytes: Type.Integer({
      minimum: 1024,
      default: 128 * 1024 * 1024,
      description: 'request body bytes all requests in flight may hold together (503 with retry-after beyond it)',
    }),
    headersTimeoutMs: Milliseconds(10_000, "time to receive a request's headers (408 beyond it); 0 = off"),
    requestTimeoutMs: Milliseconds(60_000, 'time to receive a whole request, headers and body (408 beyond it); 0 = off. Answers are bounded by backend timeouts'),
    keepAliveTimeoutMs: Milliseconds(72_000, 'keep-alive of idle client connections'),
    maxConnections: Type.Integer({ minimum: 0, default: 10_000, description: 'open client connections; more are closed as they arrive; 0 = no cap' }),
    shutdownGraceMs: Milliseconds(30_000, 'time in-flight requests get to finish on SIGTERM'),
    watchConfig: Type.Boolean({ default: false, description: 'reload the config file when it changes on disk (as SIGHUP does)' }),
    workers: Type.Union([Type.Literal('auto'), Type.Integer({ minimum: 1, maximum: 256 })], {
      default: 1,
      description:
        'gateway processes serving the one port (node:cluster): 1 = a single process; auto = one per core (os.availableParallelism()). They share only Redis; see README "Workers"',
    }),
    trustProxy: Type.Boolean({ default: false }),
    tls: Type.Optional(TlsSchema),
    cors: Type.Object(
      {
        origins: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'browser origins allowed to call the gateway (CORS); "*" for any; empty = CORS off' }),
        maxAgeSeconds: Type.Integer({ minimum: 0, maximum: 86_400, default: 600, description: 'how long a browser may cache a preflight answer' }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, default: {} },
);

export const LoggingSchema = Type.Object(
  {
    level: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)),
      { default: 'info' },
    ),
    logPrompts: Type.Boolean({ default: false, description: 'log request and response bodies (sensitive!)' }),
  },
  { additionalProperties: false, default: {} },
);

export const MetricsSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: true }),
    path: Type.String({ default: '/metrics' }),
    tenantLabels: Type.Boolean({
      default: false,
      description: 'also export tokens and cost per tenant (tenants come from API keys: keep their number bounded)',
    }),
  },
  { additionalProperties: false, default: {} },
);

export const AdminSchema = Type.Object(
  {
    token: Type.Optional(Type.String({ minLength: 16, description: 'bearer token for /admin/* (use ${ENV}); unset: /admin is open only with auth.mode none' })),
    host: Type.Optional(Type.String({ description: 'serve /admin/* and /metrics on a separate listener at this host (default: server.host)' })),
    port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65_535, description: 'separate listener port for /admin/* and /metrics; unset: the main port serves them' })),
  },
  { additionalProperties: false, default: {} },
);

/** The OpenAI Responses surface. */
export const ResponsesSchema = Type.Object(
  {
    storeTtlSeconds: Type.Integer({
      minimum: 1,
      default: 3600,
      description: 'how long a response sent with store: true is kept for previous_response_id and GET /v1/responses/{id} (needs redis)',
    }),
  },
  { additionalProperties: false, default: {} },
);

export const ConfigSchema = Type.Object(
  {
    server: ServerSchema,
    backends: Type.Array(BackendSchema, { minItems: 1 }),
    models: Type.Array(ModelSchema, { minItems: 1 }),
    logging: LoggingSchema,
    metrics: MetricsSchema,
    cache: CacheConfigSchema,
    redis: Type.Optional(RedisConfigSchema),
    cluster: ClusterConfigSchema,
    auth: AuthConfigSchema,
    limits: LimitsConfigSchema,
    admin: AdminSchema,
    responses: ResponsesSchema,
    isolation: IsolationSchema,
    tenants: Type.Record(Type.String({ minLength: 1 }), TenantPolicySchema, {
      default: {},
      description: 'per-tenant data policy (cache, stored responses, request logs, allowed zones)',
    }),
    guard: GuardSchema,
    audit: AuditSchema,
    tracing: TracingSchema,
    zones: Type.Record(Type.String({ minLength: 1, pattern: '^[A-Za-z0-9_.-]+$' }), ZoneSchema, {
      default: {},
      description: 'data zones backends run in; the implicit zone `default` (backends without a zone) is sensitive unless declared here',
    }),
  },
  { additionalProperties: false },
);

export type SwitchyardConfig = Static<typeof ConfigSchema>;
export type BackendConfig = Static<typeof BackendSchema>;
export type ModelConfig = Static<typeof ModelSchema>;
export type TargetConfig = Static<typeof TargetSchema>;
export type TimeoutsConfig = Static<typeof TimeoutsSchema>;
