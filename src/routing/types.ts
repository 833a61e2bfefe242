/**
 * The contract between live backend state and the routing policies: policies
 * are pure functions of a snapshot of candidates and a request description.
 */

import type { CircuitState } from '../backends/circuit.ts';

// The breaker (backends/) owns its state type; routing only reads it.
export type { CircuitState };

/** Routing policies a route may use (`models[].policy`): the one list the schema, the policy header and the rankers follow. */
export const policyNames = ['least-loaded', 'cheapest', 'fastest', 'balanced', 'weighted', 'round-robin'] as const;
export type PolicyName = (typeof policyNames)[number];

/** Cost of a backend: per token, or per hour of the machine. */
export interface CostModel {
  inputPer1M?: number;
  outputPer1M?: number;
  perHour?: number;
}

/** A request the gateway has in flight to a candidate, as the queue-wait prediction sees it. */
export interface AheadJob {
  /** Its predicted hold on a slot: prefill of its prompt + its expected output × TPOT (ms). */
  serviceMs: number;
  /** Time since it was sent (ms). */
  elapsedMs: number;
  /** The longest it can hold a slot: prefill + its max_tokens × TPOT (ms; Infinity without max_tokens). */
  limitMs: number;
}

/** One target of a route as the router sees it at decision time. */
export interface CandidateState {
  /** Backend id (unique within a route). */
  backend: string;
  /** Model id the backend knows. */
  model: string;
  /** Static weight from config (policy `weighted`). */
  weight: number;
  /** Health up (or not yet probed) and circuit not open. */
  healthy: boolean;
  circuit: CircuitState;
  /** Requests this gateway has in flight to the backend. */
  inflight: number;
  /** The gateway's concurrency bound for the backend. */
  maxConcurrency: number;
  /** Runtime queue length (vLLM num_requests_waiting / llama.cpp requests_deferred), undefined when unknown or stale. */
  queued: number | undefined;
  /** Runtime running requests (vLLM num_requests_running / llama.cpp requests_processing), undefined when unknown or stale. */
  running: number | undefined;
  /** Parallel slots the runtime has, when known (llama.cpp total_slots). */
  slots: number | undefined;
  /** KV-cache use 0..1 (vLLM), undefined when unknown. */
  kvCacheUsage: number | undefined;
  /** True when the last metrics scrape failed or is too old. */
  metricsStale: boolean;
  /** Predicted prefill time of this request's prompt without queueing (ms), undefined before any observation. */
  ttftMs: number | undefined;
  /** EWMA of observed time per output token (ms), undefined before any observation. */
  tpotMs: number | undefined;
  /** Typical completion tokens of an answer here (EWMA), undefined before any observation. */
  outputTokens?: number | undefined;
  /**
   * The gateway's own requests in flight there, in sending order; set only when they may fill its slots
   * (see predict.ts). Undefined: each request ahead is assumed to need a typical service.
   */
  ahead?: readonly AheadJob[] | undefined;
  /** No request has finished here yet: the figures are priors (decide.ts sends one exploration request at a time). */
  unmeasured?: boolean;
  /** Requests this gateway sent here lately (decayed, half-life 30 s): the last tie-break between identical backends. */
  recentSent?: number;
  /** Context window in tokens, when known (discovered or declared). */
  contextLength: number | undefined;
  /**
   * The runtime refuses prompt + max_tokens beyond the window (vLLM, SGLang, OpenAI: the default). False for
   * llama.cpp, which only refuses a prompt that does not fit and stops generating when the window is full.
   */
  contextCountsMaxTokens?: boolean;
  cost: CostModel;
  /** Output tokens per second the whole backend sustains: slots × one slot's speed (for perHour cost). */
  throughputTokensPerSecond: number | undefined;
  /** TTFT (ms) assumed until the first observation: the backend's prior.ttftMs (absent: 500). */
  ttftPriorMs?: number;
  /** TPOT (ms) assumed until the first observation: 1000 / prior.tokensPerSecond (absent: 50). */
  tpotPriorMs?: number;
}

/** What must fit a candidate's context window besides the prompt estimate (see decide.ts). */
export interface ContextNeed {
  /**
   * A lower bound of the prompt's tokens that cannot over-count (per sequence). Called only when the
   * estimate does not fit some window, so requests that clearly fit never pay for it.
   */
  promptFloor: () => number;
  /** max_tokens (per choice) as the client sent it; undefined when it sent none: only the prompt must fit. */
  maxTokens: number | undefined;
  /** Tokens the answer needs at the least: 1 for a generation (the prompt must leave room), 0 for embeddings. */
  minOutput: number;
}

/** What the router knows about the request being routed. */
export interface RouteRequest {
  policy: PolicyName;
  /** Estimated prompt tokens (an estimate: it may over- or under-count). */
  promptTokens: number;
  /** max_tokens (or a default) — the completion budget latency and cost predictions assume. */
  maxTokens: number;
  /** What the context-window check counts (never the default budget above). */
  context: ContextNeed;
  /** Prefix-affinity key (hash of the leading prompt), when the route enables affinity. */
  affinityKey: string | undefined;
  slo: { ttftMs?: number; tpotMs?: number } | undefined;
  onSloMiss: 'fallback' | 'reject';
  /** `balanced` policy: weight of cost versus latency, 0..1 (1 = cost only). */
  costWeight: number;
  /** Typical answer length on the route (undefined until one was seen): every candidate is predicted to write it. */
  outputTokens?: number | undefined;
  /** `round-robin`: this request's turn on the route (a counter the router keeps per route). */
  turn?: number;
}

/** Per-candidate figures behind a decision (shown in /admin/backends and logs). */
export interface CandidateScore {
  backend: string;
  predictedTtftMs: number;
  /** Cost of this request on this backend, in currency units per 1M tokens-equivalent. */
  costPer1M: number;
  score: number;
  excluded?: string;
  /** True when costPer1M rests on the prior speed (perHour cost, not measured yet). */
  costAssumed?: boolean;
}

/** The router's answer: targets to try in order, and why. */
export interface RoutingDecision {
  /** Backend ids in attempt order (at most retries + 1 are used). */
  order: string[];
  /** Machine-readable reason for the first choice, e.g. `cheapest-within-slo`, `affinity`, `fastest`. */
  reason: string;
  scores: CandidateScore[];
  /** Set when nothing may serve the request: the client gets this error. */
  reject?: { code: 'context_length_exceeded' | 'slo_unmet' | 'no_backend_available' | 'no_backend_in_zone'; message: string; retryAfterSeconds?: number };
}
