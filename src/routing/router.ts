/**
 * The router: builds a snapshot of each target's live state, asks the route's
 * policy for an attempt order, takes admission slots, and feeds outcomes back
 * (latency EWMAs, circuit breaker). Backends never decide where to go next.
 */
import type { Backend, BackendRegistry, Route, Target } from '../backends/registry.ts';
import { Admission, type Priority } from './admission.ts';
import { decide } from './decide.ts';
import type { CandidateState, ContextNeed, PolicyName, RouteRequest, RoutingDecision } from './types.ts';

/** What the router needs to know about one request. */
export interface RouteInput {
  policy: PolicyName;
  promptTokens: number;
  maxTokens: number;
  /** What the context-window check counts (see decide.ts). */
  context: ContextNeed;
  affinityKey: string | undefined;
  /** The data zones the request may reach (undefined: every zone); backends outside are never candidates. */
  zones?: ReadonlySet<string> | undefined;
}

/** Targets to try in order, or a rejection. */
export interface RoutePlan {
  targets: Target[];
  decision: RoutingDecision;
}

/** How one attempt went, for the feedback loops. */
export interface AttemptFeedback {
  ok: boolean;
  /** Counts against the circuit (transport failures, 5xx, timeouts) — not client errors or cancels. */
  backendFault: boolean;
  model: string;
  ttftMs: number | undefined;
  tpotMs: number | undefined;
}

export class Router {
  private readonly admissions = new Map<string, Admission>();
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(registry: BackendRegistry, now: () => number = Date.now, random: () => number = Math.random) {
    for (const backend of registry.byId.values()) this.admissions.set(backend.id, new Admission(backend));
    this.now = now;
    this.random = random;
  }

  admission(backend: Backend): Admission {
    return this.admissions.get(backend.id) as Admission;
  }

  /** The live state of one target as the policies see it. */
  snapshot(target: Target, now: number): CandidateState {
    const backend = target.backend;
    const live = backend.live;
    const stale = live.scrapedAt === 0 || now - live.scrapedAt > backend.config.scrape.staleAfterMs;
    const health = backend.health;
    // Unobserved (or long-unobserved) backends are predicted optimistically, so they get tried and measured;
    // a pessimistic prior would leave a fast backend that never got traffic unused forever.
    const fresh = backend.latency.fresh(now);
    const ttftMs = fresh ? backend.latency.ttftFor(target.model) : undefined;
    return {
      backend: backend.id,
      model: target.model,
      weight: target.weight,
      healthy: (health === 'up' || health === 'unknown') && backend.circuit.state !== 'open',
      circuit: backend.circuit.state,
      inflight: backend.inflight,
      maxConcurrency: backend.config.maxConcurrency,
      queued: stale ? undefined : live.queued,
      running: stale ? undefined : live.running,
      slots: live.slots,
      kvCacheUsage: stale ? undefined : live.kvCacheUsage,
      metricsStale: stale,
      ttftMs,
      // A backend seen only through whole (non-streamed) answers has all of its latency in the TTFT
      // samples (see ttftFromWhole); counting a TPOT prior on top would charge it twice.
      tpotMs: fresh ? (backend.latency.tpotFor(target.model) ?? (ttftMs === undefined ? undefined : 0)) : undefined,
      ttftPriorMs: 0,
      tpotPriorMs: 0,
      contextLength: live.models.get(target.model) ?? (live.models.size === 1 ? [...live.models.values()][0] : undefined) ?? backend.config.contextLength,
      contextCountsMaxTokens: backend.kind.contextCountsMaxTokens,
      cost: backend.config.cost,
      throughputTokensPerSecond: backend.latency.throughput(),
    };
  }

  /** Orders the route's targets for this request. */
  plan(route: Route, input: RouteInput): RoutePlan {
    const now = this.now();
    // An open circuit whose cooldown ran out becomes half-open here, so it can take a probe.
    const zones = input.zones;
    const allowed = zones === undefined ? route.targets : route.targets.filter((target) => zones.has(target.backend.zone));
    if (allowed.length === 0) {
      const message = `No backend of model \`${route.name}\` is in a zone this request may use (${[...(zones ?? [])].join(', ') || 'none'}).`;
      return { targets: [], decision: { order: [], reason: 'zone', scores: [], reject: { code: 'no_backend_in_zone', message } } };
    }
    for (const target of allowed) if (target.backend.circuit.state === 'open') target.backend.circuit.allows();
    const candidates = allowed.map((target) => this.snapshot(target, now));
    const request: RouteRequest = {
      policy: input.policy,
      promptTokens: input.promptTokens,
      maxTokens: input.maxTokens,
      context: input.context,
      affinityKey: input.affinityKey,
      slo: route.config.slo,
      onSloMiss: route.config.onSloMiss,
      costWeight: route.config.costWeight,
    };
    const decision = decide(candidates, request, this.random, route.config.affinity.loadFactor);
    const byId = new Map(allowed.map((target) => [target.backend.id, target]));
    const targets = decision.order.map((id) => byId.get(id)).filter((target): target is Target => target !== undefined);
    for (const score of decision.scores) {
      const backend = byId.get(score.backend)?.backend;
      if (!backend) continue;
      backend.lastDecision = {
        at: now,
        model: route.name,
        reason: score.excluded ?? (score.backend === decision.order[0] ? decision.reason : 'candidate'),
        predictedTtftMs: score.predictedTtftMs,
        costPer1M: score.costPer1M,
        score: score.score,
        chosen: score.backend === decision.order[0],
      };
    }
    return { targets: targets.slice(0, route.config.retries + 1), decision };
  }

  /**
   * Takes a slot on the first target that has one free; when all are full,
   * waits in the first target's queue (by priority). Returns the target used
   * (a promise only when it had to wait).
   */
  acquire(targets: readonly Target[], priority: Priority, client: { readonly signal: AbortSignal }): Target | Promise<Target> {
    const free = targets.find((target) => target.backend.circuit.allows() && this.admission(target.backend).tryAcquire());
    if (free) return this.took(free); // no promise when a slot is free (the common case)
    const first = targets[0] as Target;
    return this.admission(first.backend)
      .acquire(priority, client.signal)
      .then(() => this.took(first));
  }

  private took(target: Target): Target {
    target.backend.circuit.onAttempt();
    target.backend.latency.noteConcurrency(target.backend.inflight);
    return target;
  }

  release(backend: Backend): void {
    this.admission(backend).release();
  }

  /** Feeds an attempt's outcome into the latency EWMAs and the circuit breaker. */
  feedback(backend: Backend, feedback: AttemptFeedback): void {
    if (feedback.ok) {
      backend.circuit.onSuccess();
      backend.latency.observe(feedback.model, feedback.ttftMs, feedback.tpotMs);
    } else if (feedback.backendFault) {
      backend.circuit.onFailure();
    } else {
      backend.circuit.onAbandon();
    }
  }
}
