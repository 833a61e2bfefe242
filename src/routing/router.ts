/**
 * The router: builds a snapshot of each target's live state, asks the route's
 * policy for an attempt order, takes admission slots, tracks the requests it
 * sent (the queue-wait prediction counts them), and feeds outcomes back
 * (service times, circuit breaker). Backends never decide where to go next.
 */
import { Ewma, type InflightJob } from '../backends/latency.ts';
import type { Backend, BackendRegistry, Route, Target } from '../backends/registry.ts';
import type { SharedSlots } from '../cluster/slots.ts';
import { Admission, type Priority } from './admission.ts';
import { decide } from './decide.ts';
import { ASSUMED_OUTPUT_TOKENS, occupancyOf, parallelismOf, predictTpotMs } from './predict.ts';
import type { AheadJob, CandidateState, ContextNeed, PolicyName, RouteRequest, RoutingDecision } from './types.ts';

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
  /** The snapshots the decision saw, in the order of `decision.scores`. */
  candidates: CandidateState[];
  promptTokens: number;
  /** The client's max_tokens (undefined: none). */
  maxTokens: number | undefined;
  /** The route's answer lengths: the attempt's completion tokens feed it. */
  answers: Ewma;
}

/** How one attempt went, for the feedback loops. */
export interface AttemptFeedback {
  ok: boolean;
  /** Counts against the circuit (transport failures, 5xx, timeouts) — not client errors or cancels. */
  backendFault: boolean;
  /** Time from send to the first token (ms), when known. */
  ttftMs: number | undefined;
  tpotMs: number | undefined;
  completionTokens: number | undefined;
}

const bySendingOrder = (a: InflightJob, b: InflightJob): number => a.seq - b.seq;

/** Told the predicted and the actual TTFT of every measured attempt (the prediction-error metric). */
export type PredictionObserver = (backend: Backend, predictedMs: number, actualMs: number) => void;

export class Router {
  /** Per backend object: a backend a reload replaced keeps its queue for the requests it still holds. */
  private readonly admissions = new WeakMap<Backend, Admission>();
  private readonly turns = new WeakMap<Route, number>();
  /**
   * Typical answer length per public model (by name, so a reload keeps it). A property of the workload, not of
   * the backend: every candidate of a request is predicted to write the same answer, so identical backends that
   * happened to get shorter answers lately do not look faster (see predictLatencyMs).
   */
  private readonly answers = new Map<string, Ewma>();
  private readonly now: () => number;
  /** Attempts started so far: each job's place in sending order. */
  private sent = 0;
  private readonly random: () => number;
  /** Shared slots (cluster mode): admission leases slots fleet-wide and the snapshots count the fleet's load. */
  private readonly shared: SharedSlots | undefined;
  /** A fleet load read older than this is not used (Redis away): the gateway's own count stands in. */
  private readonly fleetMaxAgeMs: number;
  private readonly pollMs: number | undefined;
  /** Set by the app: records prediction errors in the metrics. */
  onPrediction: PredictionObserver | undefined;

  constructor(
    registry: BackendRegistry,
    now: () => number = Date.now,
    random: () => number = Math.random,
    cluster?: { slots: SharedSlots; pollMs: number; loadRefreshMs: number },
  ) {
    this.shared = cluster?.slots;
    this.pollMs = cluster?.pollMs;
    this.fleetMaxAgeMs = cluster ? Math.max(1_000, cluster.loadRefreshMs * 4) : 0;
    for (const backend of registry.byId.values()) this.admission(backend);
    if (cluster) {
      cluster.slots.onFreed = (id) => {
        const backend = registry.byId.get(id);
        if (backend) this.admissions.get(backend)?.retry();
      };
      cluster.slots.onCount = (id, total, own, at) => registry.byId.get(id)?.applyFleetLoad(total, own, at);
    }
    this.now = now;
    this.random = random;
  }

  /** Requests in flight to the backend as routing counts them: the fleet's (cluster mode) or this gateway's. */
  inflightOf(backend: Backend, now: number): number {
    return this.shared === undefined ? backend.inflight : backend.fleetInflight(now, this.fleetMaxAgeMs);
  }

  admission(backend: Backend): Admission {
    let admission = this.admissions.get(backend);
    if (admission === undefined) {
      // a backend a config reload added
      admission = new Admission(backend, this.shared, this.pollMs);
      this.admissions.set(backend, admission);
    }
    return admission;
  }

  /** The live state of one target as the policies see it, for a request with this prompt. */
  snapshot(target: Target, now: number, promptTokens = 0): CandidateState {
    const backend = target.backend;
    const live = backend.live;
    const stale = live.scrapedAt === 0 || now - live.scrapedAt > backend.config.scrape.staleAfterMs;
    const health = backend.health;
    const service = backend.service;
    const figures = service.of(target.model);
    const prior = backend.config.prior;
    // The runtime's counts as of its last scrape include requests of ours that ended since: take them off (a
    // queued one took the slot of each, while there was a queue).
    let queued = stale ? undefined : live.queued;
    let running = stale ? undefined : live.running;
    const ended = stale ? 0 : backend.endedSinceScrape;
    if (ended > 0) {
      const fromQueue = Math.min(queued ?? 0, ended);
      if (queued !== undefined) queued -= fromQueue;
      if (running !== undefined) running = Math.max(0, running - (ended - fromQueue));
    }
    const candidate: CandidateState = {
      backend: backend.id,
      model: target.model,
      weight: target.weight,
      healthy: (health === 'up' || health === 'unknown') && backend.circuit.state !== 'open',
      circuit: backend.circuit.state,
      inflight: this.shared === undefined ? backend.inflight : backend.fleetInflight(Date.now(), this.fleetMaxAgeMs),
      maxConcurrency: backend.config.maxConcurrency,
      queued,
      running,
      slots: live.slots,
      kvCacheUsage: stale ? undefined : live.kvCacheUsage,
      metricsStale: stale,
      // Service figures stay after idle spells (decayed, not forgotten); priors stand in until the first one.
      ttftMs: figures.prefill.predict(promptTokens),
      // A backend seen only through whole (non-streamed) answers has all of its latency in the prefill samples
      // (see ttftFromWhole in proxy/forward.ts); a TPOT prior on top would charge it twice. (Only once an answer
      // finished: a first token alone says nothing about decoding.)
      tpotMs: figures.tpot.value ?? (figures.outputTokens.samples > 0 ? 0 : undefined),
      outputTokens: figures.outputTokens.value,
      unmeasured: !figures.measured,
      ttftPriorMs: prior.ttftMs,
      tpotPriorMs: 1000 / prior.tokensPerSecond,
      contextLength: live.models.get(target.model) ?? (live.models.size === 1 ? [...live.models.values()][0] : undefined) ?? backend.config.contextLength,
      contextCountsMaxTokens: backend.kind.contextCountsMaxTokens,
      cost: backend.config.cost,
      throughputTokensPerSecond: backend.capacityTokensPerSecond(target.model),
      recentSent: service.recentSent(now),
    };
    // The requests ahead matter only when they may fill the slots (the common case pays nothing).
    if (service.inflight.size > 0 && occupancyOf(candidate) + 1 > parallelismOf(candidate)) candidate.ahead = this.ahead(backend, candidate, now);
    return candidate;
  }

  /**
   * The gateway's requests in flight to the backend, as the queue-wait prediction sees them: each from the
   * figures of its own model (the candidate's TPOT and output stand in for a model not measured yet).
   */
  private ahead(backend: Backend, candidate: CandidateState, now: number): AheadJob[] {
    const service = backend.service;
    const candidateTpot = predictTpotMs(candidate);
    const priorTtft = backend.config.prior.ttftMs;
    const jobs: AheadJob[] = [];
    // The first in sending order hold the slots (predict.ts): the Bag keeps no order, so sort by it here, only when
    // the backend is full.
    for (const job of service.inflight.toArray().sort(bySendingOrder)) {
      const figures = job.figures;
      const prefill = figures.prefill.predict(job.promptTokens) ?? priorTtft;
      const tpot = figures.tpot.value ?? candidateTpot;
      const typical = figures.outputTokens.value ?? candidate.outputTokens ?? ASSUMED_OUTPUT_TOKENS;
      const output = job.maxTokens === undefined ? typical : Math.min(Math.max(0, job.maxTokens), typical);
      const limitMs = job.maxTokens === undefined ? Number.POSITIVE_INFINITY : prefill + job.maxTokens * tpot;
      jobs.push({ serviceMs: prefill + output * tpot, elapsedMs: now - job.startedAt, limitMs });
    }
    return jobs;
  }

  private answersOf(route: Route): Ewma {
    let answers = this.answers.get(route.name);
    if (answers === undefined) {
      // Starts from the assumed length as if seen 3 times, like a backend's (ServiceStats.outputTokens).
      answers = new Ewma(0.1, ASSUMED_OUTPUT_TOKENS, 3);
      this.answers.set(route.name, answers);
    }
    return answers;
  }

  /** Orders the route's targets for this request. */
  plan(route: Route, input: RouteInput): RoutePlan {
    const now = this.now();
    const answers = this.answersOf(route);
    // An open circuit whose cooldown ran out becomes half-open here, so it can take a probe.
    const zones = input.zones;
    const allowed = zones === undefined ? route.targets : route.targets.filter((target) => zones.has(target.backend.zone));
    if (allowed.length === 0) {
      const message = `No backend of model \`${route.name}\` is in a zone this request may use (${[...(zones ?? [])].join(', ') || 'none'}).`;
      return {
        targets: [],
        decision: { order: [], reason: 'zone', scores: [], reject: { code: 'no_backend_in_zone', message } },
        candidates: [],
        promptTokens: input.promptTokens,
        maxTokens: input.context.maxTokens,
        answers,
      };
    }
    for (const target of allowed) if (target.backend.circuit.state === 'open') target.backend.circuit.allows();
    const candidates = allowed.map((target) => this.snapshot(target, now, input.promptTokens));
    let turn: number | undefined;
    if (input.policy === 'round-robin') {
      turn = this.turns.get(route) ?? 0;
      this.turns.set(route, turn + 1);
    }
    const request: RouteRequest = {
      policy: input.policy,
      promptTokens: input.promptTokens,
      maxTokens: input.maxTokens,
      context: input.context,
      affinityKey: input.affinityKey,
      slo: route.config.slo,
      onSloMiss: route.config.onSloMiss,
      costWeight: route.config.costWeight,
      outputTokens: answers.value,
      turn,
    };
    const decision = decide(candidates, request, this.random, route.config.affinity.loadFactor);
    // A linear search: routes have a handful of targets, and a Map per request costs more.
    const byId = (id: string): Target | undefined => allowed.find((target) => target.backend.id === id);
    const targets: Target[] = [];
    const attempts = route.config.retries + 1;
    for (const id of decision.order) {
      if (targets.length === attempts) break;
      const target = byId(id);
      if (target !== undefined) targets.push(target);
    }
    for (const score of decision.scores) {
      const backend = byId(score.backend)?.backend;
      if (!backend) continue;
      // Written in place (read only by the admin view, which copies it): no object per candidate per request.
      backend.lastDecision ??= { at: 0, model: '', reason: '', predictedTtftMs: undefined, costPer1M: undefined, score: undefined, chosen: false };
      const last = backend.lastDecision;
      last.at = now;
      last.model = route.name;
      last.reason = score.excluded ?? (score.backend === decision.order[0] ? decision.reason : 'candidate');
      last.predictedTtftMs = score.predictedTtftMs;
      last.costPer1M = score.costPer1M;
      last.score = score.score;
      last.chosen = score.backend === decision.order[0];
    }
    return {
      targets,
      decision,
      candidates,
      promptTokens: input.promptTokens,
      maxTokens: input.context.maxTokens,
      answers,
    };
  }

  /**
   * Takes a slot on the first target that has one free; when all are full,
   * waits in the first target's queue (by priority). Returns the target used
   * (a promise only when it had to wait).
   */
  acquire(targets: readonly Target[], priority: Priority, client: { readonly signal: AbortSignal }): Target | Promise<Target> {
    if (this.shared !== undefined) return this.acquireShared(targets, priority, client);
    const free = targets.find((target) => target.backend.circuit.allows() && this.admission(target.backend).tryAcquire());
    if (free) return this.took(free); // no promise when a slot is free (the common case)
    const first = targets[0] as Target;
    return this.admission(first.backend)
      .acquire(priority, client.signal)
      .then(() => this.took(first));
  }

  /**
   * Shared slots: the first target with a fleet-wide slot free (one round trip each; a target the load view
   * shows full is skipped without one, unless it is the last), else the first target's queue.
   */
  private async acquireShared(targets: readonly Target[], priority: Priority, client: { readonly signal: AbortSignal }): Promise<Target> {
    const now = Date.now();
    let triedFirst = false;
    for (let index = 0; index < targets.length; index++) {
      const target = targets[index] as Target;
      const backend = target.backend;
      if (index < targets.length - 1 && backend.fleetInflight(now, this.fleetMaxAgeMs) >= backend.config.maxConcurrency) continue;
      if (!backend.circuit.allows()) continue;
      if (index === 0) triedFirst = true;
      if (await this.admission(backend).tryAcquireShared()) return this.took(target);
    }
    const first = targets[0] as Target;
    await this.admission(first.backend).acquireShared(priority, client.signal, !triedFirst);
    return this.took(first);
  }

  private took(target: Target): Target {
    target.backend.circuit.onAttempt();
    return target;
  }

  /**
   * Records an attempt sent to `target` (after acquire): the queue-wait prediction counts it until
   * release(). It waited for a slot when the backend's slots were all taken as it was sent.
   */
  started(target: Target, plan: RoutePlan): InflightJob {
    const backend = target.backend;
    const index = plan.candidates.findIndex((candidate) => candidate.backend === backend.id);
    const snapshot = plan.candidates[index];
    const before = Math.max(
      snapshot === undefined ? 0 : occupancyOf(snapshot),
      (this.shared === undefined ? backend.inflight : backend.fleetInflight(Date.now(), this.fleetMaxAgeMs)) - 1,
    );
    const parallelism = snapshot === undefined ? backend.config.maxConcurrency : parallelismOf(snapshot);
    const job: InflightJob = {
      startedAt: this.now(),
      promptTokens: plan.promptTokens,
      maxTokens: plan.maxTokens,
      predictedTtftMs: plan.decision.scores[index]?.predictedTtftMs,
      queuedAtSend: before >= parallelism,
      firstTokenAt: 0,
      answers: plan.answers,
      figures: backend.service.of(target.model),
      seq: ++this.sent,
      bagSlot: -1,
    };
    backend.service.inflight.add(job);
    backend.service.noteSent(job.startedAt);
    return job;
  }

  /**
   * The attempt's first token arrived `ttftMs` after it was sent: a prefill sample when it did not queue,
   * and a prediction to score. Called at most once per job (again at the end for answers read whole).
   */
  firstToken(backend: Backend, job: InflightJob, ttftMs: number): void {
    if (job.firstTokenAt !== 0) return;
    const now = this.now();
    job.firstTokenAt = now;
    if (!job.queuedAtSend) job.figures.observePrefill(job.promptTokens, ttftMs, now);
    if (job.predictedTtftMs !== undefined) this.onPrediction?.(backend, job.predictedTtftMs, ttftMs);
  }

  release(backend: Backend, job: InflightJob): void {
    backend.service.inflight.delete(job);
    backend.noteEnded();
    this.admission(backend).release();
  }

  /** Feeds an attempt's outcome into the service figures and the circuit breaker. */
  feedback(backend: Backend, job: InflightJob, feedback: AttemptFeedback): void {
    if (feedback.ok) {
      backend.circuit.onSuccess();
      if (feedback.ttftMs !== undefined) this.firstToken(backend, job, feedback.ttftMs);
      job.figures.observeDecode(feedback.tpotMs, feedback.completionTokens);
      if (feedback.completionTokens !== undefined && feedback.completionTokens > 0) job.answers.update(feedback.completionTokens);
    } else if (feedback.backendFault) {
      backend.circuit.onFailure();
    } else {
      backend.circuit.onAbandon();
    }
  }
}
