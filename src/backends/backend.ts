/**
 * One configured backend and the live state the router reads on the hot path.
 * This class is the only writer of that state: its slot count (admission
 * takes and frees slots through it), its health state machine (probes and
 * passive signals report to it) and what the runtime last said about itself
 * (scrapes, discovery and load reports apply through it). Everyone else reads.
 */
import type { Dispatcher } from 'undici';
import type { BackendConfig } from '../config/schema.ts';
import { CircuitBreaker } from './circuit.ts';
import type { BackendKind, RuntimeLoad } from './kinds/index.ts';
import { ServiceStats } from './latency.ts';

/** Health as last seen; `unknown` until the first probe answers (treated as usable). */
export type BackendHealth = 'unknown' | 'up' | 'loading' | 'down';

/** What the runtime last told us about itself. */
export interface LiveSignals {
  readonly queued: number | undefined;
  readonly running: number | undefined;
  readonly kvCacheUsage: number | undefined;
  /** Clock time of the last successful scrape or load report (0 = never). */
  readonly scrapedAt: number;
  readonly scrapeError: string | undefined;
  /** Parallel slots (from config, else as the kind's discovery reports them). */
  readonly slots: number | undefined;
  /** Served model ids and their context length, from the kind's discovery. */
  readonly models: ReadonlyMap<string, number | undefined>;
  readonly modelsDiscoveredAt: number;
}

type MutableLive = { -readonly [K in keyof LiveSignals]: LiveSignals[K] } & { models: Map<string, number | undefined> };

/** The last routing decision that considered this backend, for /admin/backends. */
export interface LastDecision {
  at: number;
  model: string;
  reason: string;
  predictedTtftMs: number | undefined;
  costPer1M: number | undefined;
  score: number | undefined;
  chosen: boolean;
}

export interface BackendParts {
  config: BackendConfig;
  kind: BackendKind;
  origin: string;
  basePath: string;
  dispatcher: Dispatcher;
  now: () => number;
}

export class Backend {
  readonly id: string;
  /** Replaced as a whole by a config reload (reconfigure); read it where it is used, never keep a part of it. */
  config: BackendConfig;
  readonly kind: BackendKind;
  /** The data zone it runs in (see routing/zones.ts). */
  zone: string;
  /** `http://host:port` the pool connects to. */
  readonly origin: string;
  /** Path prefix before `/v1/...` ('' for most servers). */
  readonly basePath: string;
  readonly dispatcher: Dispatcher;
  /** `authorization` header value for the backend, when it needs a key. */
  authorization: string | undefined;
  /** Stream upstream for non-streaming clients (prompt cancellation on llama.cpp). */
  streamUpstream: boolean;
  /** Extra request headers asking for the kind's per-response load report, when enabled and the kind has one. */
  loadReportHeaders: Readonly<Record<string, string>> | undefined;
  /** Service times learnt from answers, and the gateway's requests in flight here (see latency.ts). */
  readonly service: ServiceStats;
  readonly circuit: CircuitBreaker;
  /** Last routing score details, for /admin/backends (written by the router, read by the admin API). */
  lastDecision: LastDecision | undefined = undefined;

  #inflight = 0;
  /** Other replicas' requests in flight here as last read from the shared slots (cluster), and when. */
  #othersInflight = 0;
  #fleetReadAt = 0;
  #health: BackendHealth = 'unknown';
  #healthCheckedAt = 0;
  #healthFailures = 0;
  #healthSuccesses = 0;
  /** Time seen running (probes answering up or loading), closed stretches; and the last probe that saw it running. */
  #runningMs = 0;
  #runningProbeAt = 0;
  /** Token charges of answered requests (per-token prices), for the fleet cost. */
  #tokenSpend = 0;
  #lastError: string | undefined = undefined;
  readonly #live: MutableLive;
  #ended = 0;
  #endedAtScrape = 0;

  constructor(parts: BackendParts) {
    const { config, kind } = parts;
    this.id = config.id;
    this.config = config;
    this.kind = kind;
    this.zone = config.zone;
    this.origin = parts.origin;
    this.basePath = parts.basePath;
    this.dispatcher = parts.dispatcher;
    this.authorization = config.apiKey ? `Bearer ${config.apiKey}` : undefined;
    this.streamUpstream = config.streamUpstream === 'always' || (config.streamUpstream === 'auto' && kind.streamUpstreamByDefault);
    this.loadReportHeaders = config.loadReport ? kind.loadReport?.requestHeaders : undefined;
    this.circuit = new CircuitBreaker(config.circuit, parts.now);
    this.service = new ServiceStats(config.prior.ttftMs);
    this.#live = {
      queued: undefined,
      running: undefined,
      kvCacheUsage: undefined,
      scrapedAt: 0,
      scrapeError: undefined,
      slots: config.slots,
      models: new Map(),
      modelsDiscoveredAt: 0,
    };
  }

  /**
   * A config reload changed this backend's settings but not its address or kind: the new settings apply from
   * the next request, and what it has learnt (health, circuit, service times, slots, spend) stays.
   */
  reconfigure(config: BackendConfig): void {
    this.config = config;
    this.zone = config.zone;
    this.authorization = config.apiKey ? `Bearer ${config.apiKey}` : undefined;
    this.streamUpstream = config.streamUpstream === 'always' || (config.streamUpstream === 'auto' && this.kind.streamUpstreamByDefault);
    this.loadReportHeaders = config.loadReport ? this.kind.loadReport?.requestHeaders : undefined;
    this.circuit.reconfigure(config.circuit);
    this.service.reconfigure(config.prior.ttftMs);
    if (config.slots !== undefined) this.#live.slots = config.slots;
  }

  /** Requests this gateway has in flight to the backend (slots held through admission). */
  get inflight(): number {
    return this.#inflight;
  }
  /**
   * Requests in flight here from the whole fleet of replicas: this gateway's own now, plus the others' as last
   * read from the shared slots (cluster mode). Without a fresh read (no cluster, or Redis away for more than
   * `maxAgeMs`), this gateway's own.
   */
  fleetInflight(now: number, maxAgeMs: number): number {
    return this.#fleetReadAt !== 0 && now - this.#fleetReadAt <= maxAgeMs ? this.#inflight + this.#othersInflight : this.#inflight;
  }
  /** Clock time of the last fleet load read (0 = never). */
  get fleetReadAt(): number {
    return this.#fleetReadAt;
  }
  get othersInflight(): number {
    return this.#othersInflight;
  }
  get health(): BackendHealth {
    return this.#health;
  }
  get healthCheckedAt(): number {
    return this.#healthCheckedAt;
  }
  get lastError(): string | undefined {
    return this.#lastError;
  }
  get live(): LiveSignals {
    return this.#live;
  }

  /**
   * Output tokens per second the backend sustains: its slots (reported by the runtime, else config `slots`,
   * else maxConcurrency) × one slot's speed (measured, else prior.tokensPerSecond). It depends on the machine,
   * not on the traffic a policy happened to send, so identical boxes get one price (see predict.ts). The slot
   * speed is `model`'s (the upstream model id), else that of the backend's most measured model.
   */
  capacityTokensPerSecond(model?: string): number {
    const tpot = (model === undefined ? this.service.main : this.service.of(model)).tpot.value;
    const perSlot = tpot !== undefined && tpot > 0 ? 1000 / tpot : this.config.prior.tokensPerSecond;
    return (this.#live.slots ?? this.config.maxConcurrency) * perSlot;
  }

  /**
   * Adds what an answered request was billed here: its whole cost on a per-token backend; on a perHour one only
   * its per-token prices, if any (the hour is paid by spend() whatever the traffic).
   */
  charge(cost: number, promptTokens: number, completionTokens: number): void {
    const model = this.config.cost;
    if ((model.perHour ?? 0) > 0) this.#tokenSpend += ((model.inputPer1M ?? 0) * promptTokens + (model.outputPer1M ?? 0) * completionTokens) / 1e6;
    else this.#tokenSpend += cost;
  }

  /**
   * What the backend cost so far: perHour × the time it was seen running (to the last probe, plus up to one
   * probe interval since) + its per-token charges. Summed over backends, the fleet's real cost. `hourly` false leaves
   * the perHour part out (all workers but one, so the merged sum counts the hours once).
   */
  spend(now: number, hourly = true): number {
    if (!hourly) return this.#tokenSpend;
    let running = this.#runningMs;
    if (this.#runningProbeAt !== 0) running += Math.min(Math.max(0, now - this.#runningProbeAt), this.config.health.intervalMs);
    return ((this.config.cost.perHour ?? 0) * running) / 3_600_000 + this.#tokenSpend;
  }

  /** Takes a slot when one is free; false at `maxConcurrency`. */
  takeSlot(): boolean {
    if (this.#inflight >= this.config.maxConcurrency) return false;
    this.#inflight++;
    return true;
  }

  /** Gives a slot back. */
  freeSlot(): void {
    if (this.#inflight > 0) this.#inflight--;
  }

  /** A read of the shared slots: `total` live leases of the fleet, `own` of them this gateway's at the time. */
  applyFleetLoad(total: number, own: number, now: number): void {
    this.#othersInflight = Math.max(0, total - own);
    this.#fleetReadAt = now;
  }

  /** Applies a probe verdict with the configured thresholds. */
  recordProbe(verdict: 'up' | 'loading' | 'down', detail: string, now: number): void {
    this.#healthCheckedAt = now;
    // Wall-clock time the machine runs (what a per-hour price pays for): between probes that both saw it running.
    if (verdict === 'down') this.#runningProbeAt = 0;
    else {
      if (this.#runningProbeAt !== 0) this.#runningMs += Math.max(0, now - this.#runningProbeAt);
      this.#runningProbeAt = now;
    }
    if (verdict === 'up') {
      this.#healthFailures = 0;
      this.#healthSuccesses++;
      if (this.#health !== 'up' && (this.#health === 'unknown' || this.#healthSuccesses >= this.config.health.healthyThreshold)) this.#health = 'up';
      return;
    }
    this.#healthSuccesses = 0;
    this.#healthFailures++;
    this.#lastError = detail;
    if (verdict === 'loading') this.#health = 'loading';
    else if (this.#health === 'unknown' || this.#healthFailures >= this.config.health.unhealthyThreshold) this.#health = 'down';
  }

  /** Real traffic could not connect: down at once; the next probe brings it back. */
  markUnreachable(detail: string): void {
    this.#health = 'down';
    this.#healthSuccesses = 0;
    this.#lastError = detail;
  }

  /** Attempts of this gateway that ended here, ever (a running count; see endedSinceScrape). */
  get endedCount(): number {
    return this.#ended;
  }

  /** One of this gateway's attempts here ended (Router.release). */
  noteEnded(): void {
    this.#ended++;
  }

  /**
   * The gateway's attempts that ended here since the last scrape was sent: the runtime's counts still include
   * them, so the router takes them off (until the next scrape, a finished request would look like one of another
   * client's, holding a slot).
   */
  get endedSinceScrape(): number {
    return this.#ended - this.#endedAtScrape;
  }

  /** Load gauges from a successful scrape of the runtime's /metrics; `endedAtSend`: endedCount when it was sent. */
  applyScrape(load: RuntimeLoad, now: number, endedAtSend = this.#ended): void {
    this.#endedAtScrape = endedAtSend;
    const live = this.#live;
    live.queued = load.queued;
    live.running = load.running;
    live.kvCacheUsage = load.kvCacheUsage;
    live.scrapedAt = now;
    live.scrapeError = undefined;
  }

  /** A failed scrape: the old figures stay (and go stale), the error is kept for /admin/backends. */
  scrapeFailed(message: string): void {
    this.#live.scrapeError = message;
  }

  /** A per-response load report: fresher than any scrape, it updates what it carries. */
  applyLoadReport(load: { queued?: number; kvCacheUsage?: number }, now: number): void {
    const live = this.#live;
    if (load.queued !== undefined) live.queued = load.queued;
    if (load.kvCacheUsage !== undefined) live.kvCacheUsage = load.kvCacheUsage;
    live.scrapedAt = now;
  }

  /** What the kind's discovery found: served models with their context length, and slots unless config sets them. */
  applyDiscovery(models: readonly { id: string; contextLength: number | undefined }[] | undefined, slots: number | undefined, now: number): void {
    const live = this.#live;
    if (models !== undefined) {
      for (const model of models) live.models.set(model.id, model.contextLength);
      live.modelsDiscoveredAt = now;
    }
    if (slots !== undefined && this.config.slots === undefined) live.slots = slots;
  }
}
