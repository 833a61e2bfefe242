/**
 * Latency and cost predictions for one candidate, from the live signals in
 * its snapshot. Pure arithmetic: the hot path runs it for every candidate of
 * every request.
 *
 * Service times (learnt apart from queueing, see backends/latency.ts):
 *
 *   prefill   = intercept + slope × prompt tokens, fitted on requests that did
 *               not wait for a slot; else the backend's prior.ttftMs
 *   tpot      = EWMA time per output token; else 1000 / prior.tokensPerSecond
 *   output    = EWMA of completion tokens; else 256
 *   service   = prefill + min(max_tokens, output) × tpot   (one request's hold on a slot)
 *
 * Queue wait, from what is actually ahead:
 *
 *   P         = slots (llama.cpp), else running when the runtime reports a queue
 *               (a queue means every sequence slot is busy), else maxConcurrency
 *   occupancy = max(inflight, queued + running) with fresh metrics,
 *               inflight alone when metrics are stale or missing
 *   wait      = 0 while occupancy < P
 *   otherwise, with the gateway's own requests there known (`ahead`): the first
 *   P in sending order hold the slots for what is left of their service; one
 *   already past its expected service is expected to run half a typical
 *   answer more (long answers run long), never past its own max_tokens, and
 *   at least one token; requests the runtime reports beyond ours hold one for
 *   half a typical service; the rest queue in order and each takes the first
 *   slot to free up; the wait is when a slot frees after all of them.
 *   Without that list: wait = (occupancy + 1 − P) × service / P.
 *
 *   TTFT      = wait + prefill(this prompt)
 *   latency   = TTFT + min(max_tokens, answer) × tpot   (the whole answer; answer = the route's typical answer
 *               length, the same for every candidate, else the backend's output)
 *
 * TTFT never decreases as the queue or the in-flight count grows (more
 * running sequences alongside a queue mean more parallelism, so it may fall
 * then).
 */
import type { AheadJob, CandidateState, RouteRequest } from './types.ts';

/** TTFT assumed before a backend has been observed, when the candidate carries no prior (ms). */
export const TTFT_PRIOR_MS = 500;
/** TPOT assumed before a backend has been observed, when the candidate carries no prior (ms per output token). */
export const TPOT_PRIOR_MS = 50;
/** Output tokens assumed for a request until the backend's typical output length is known. */
export const ASSUMED_OUTPUT_TOKENS = 256;

/** Prefill time of this request's prompt (the candidate's ttftMs), or the prior when nothing was observed yet. */
export function baseTtftMs(candidate: CandidateState): number {
  return candidate.ttftMs ?? candidate.ttftPriorMs ?? TTFT_PRIOR_MS;
}

/** Predicted time per output token (ms): EWMA TPOT, or the prior. */
export function predictTpotMs(candidate: CandidateState): number {
  return candidate.tpotMs ?? candidate.tpotPriorMs ?? TPOT_PRIOR_MS;
}

/** Output tokens a request with this budget is expected to produce here. */
export function expectedOutput(candidate: CandidateState, maxTokens: number | undefined): number {
  const typical = candidate.outputTokens ?? ASSUMED_OUTPUT_TOKENS;
  return maxTokens === undefined ? typical : Math.min(Math.max(0, maxTokens), typical);
}

function metricsUsable(candidate: CandidateState): boolean {
  return !candidate.metricsStale && (candidate.queued !== undefined || candidate.running !== undefined);
}

/** Requests the backend runs at once, as far as the signals tell. */
export function parallelismOf(candidate: CandidateState): number {
  if (candidate.slots !== undefined && candidate.slots > 0) return candidate.slots;
  if (metricsUsable(candidate) && (candidate.queued ?? 0) > 0 && (candidate.running ?? 0) > 0) {
    return candidate.running as number;
  }
  return Math.max(1, candidate.maxConcurrency);
}

/**
 * Requests at the backend now. The runtime's counts include other clients
 * (other gateway replicas); our own in-flight count is fresher. Take the larger.
 */
export function occupancyOf(candidate: CandidateState): number {
  if (!metricsUsable(candidate)) return candidate.inflight;
  return Math.max(candidate.inflight, (candidate.queued ?? 0) + (candidate.running ?? 0));
}

/** Index of the smallest value. */
function earliest(free: number[]): number {
  let index = 0;
  for (let slot = 1; slot < free.length; slot++) if ((free[slot] as number) < (free[index] as number)) index = slot;
  return index;
}

/** The slot simulation over the requests ahead (see the file comment). */
function waitBehind(ahead: readonly AheadJob[], others: number, parallelism: number, typicalService: number, residual: number, tpot: number): number {
  const free: number[] = [];
  const queuedService: number[] = [];
  const place = (holdMs: number, remainingMs: number): void => {
    if (free.length < parallelism) free.push(remainingMs);
    else queuedService.push(holdMs);
  };
  for (let other = 0; other < others; other++) place(typicalService, typicalService / 2);
  for (const job of ahead) {
    const left = Math.min(job.limitMs - job.elapsedMs, Math.max(job.serviceMs - job.elapsedMs, residual));
    place(job.serviceMs, Math.max(tpot, left));
  }
  if (free.length < parallelism) return 0;
  for (const service of queuedService) {
    const slot = earliest(free);
    free[slot] = (free[slot] as number) + service;
  }
  return free[earliest(free)] as number;
}

/** Predicted time this request waits for a slot before its prefill starts (ms). */
export function predictWaitMs(candidate: CandidateState): number {
  const parallelism = parallelismOf(candidate);
  const occupancy = occupancyOf(candidate);
  if (occupancy + 1 <= parallelism) return 0;
  const tpot = predictTpotMs(candidate);
  const service = baseTtftMs(candidate) + expectedOutput(candidate, undefined) * tpot;
  const ahead = candidate.ahead;
  if (ahead === undefined) return ((occupancy + 1 - parallelism) * service) / parallelism;
  const residual = (expectedOutput(candidate, undefined) / 2) * tpot;
  return waitBehind(ahead, Math.max(0, occupancy - ahead.length), parallelism, service, residual, tpot);
}

/** Predicted time to first token (ms); see the formula at the top of this file. */
export function predictTtftMs(candidate: CandidateState): number {
  return baseTtftMs(candidate) + predictWaitMs(candidate);
}

/**
 * Predicted time to the last token of the answer (ms). The answer's length is the route's typical one when known
 * (the same for every candidate: it depends on the request, not on where it goes), else the backend's.
 */
export function predictLatencyMs(candidate: CandidateState, ttftMs: number, tpotMs: number, request: RouteRequest): number {
  const answer = request.outputTokens === undefined ? expectedOutput(candidate, request.maxTokens) : Math.min(Math.max(0, request.maxTokens), request.outputTokens);
  return ttftMs + answer * tpotMs;
}

/** True when a perHour cost rests on the backend's prior speed, not a measured one. */
export function costIsAssumed(candidate: CandidateState): boolean {
  return (candidate.cost.perHour ?? 0) > 0 && candidate.tpotMs === undefined;
}

/** What pricing needs of a candidate: its cost model and measured throughput. */
export type Priced = Pick<CandidateState, 'cost' | 'throughputTokensPerSecond'>;

/**
 * Price of one million output tokens, perHour converted through capacity:
 * outputPer1M + perHour × 1e6 / (3600 × capacity tokens per second), where
 * capacity = slots × one slot's speed (Backend.capacityTokensPerSecond), the
 * same for identical machines whatever the traffic. The GPU hour is charged
 * to output tokens because decoding is what occupies the machine.
 */
export function outputPricePer1M(candidate: Priced): number {
  const perHour = candidate.cost.perHour ?? 0;
  let hourly = 0;
  const capacity = candidate.throughputTokensPerSecond;
  if (perHour > 0 && capacity !== undefined && capacity > 0) hourly = (perHour * 1e6) / (3600 * capacity);
  return (candidate.cost.outputPer1M ?? 0) + hourly;
}

/**
 * Cost of this request per million of its tokens (prompt and completion
 * budget blended), so backends priced differently compare on one scale:
 * (inputPer1M × prompt + outputPrice × maxTokens) / (prompt + maxTokens).
 */
export function costPer1M(candidate: CandidateState, request: RouteRequest): number {
  const output = outputPricePer1M(candidate);
  const input = candidate.cost.inputPer1M ?? 0;
  const prompt = Math.max(0, request.promptTokens);
  const completion = Math.max(0, request.maxTokens);
  const total = prompt + completion;
  if (total === 0) return output;
  return (input * prompt + output * completion) / total;
}

/** What a finished request cost on this backend: prompt × inputPer1M plus completion × output price, per million. */
export function requestCost(candidate: Priced, promptTokens: number, completionTokens: number): number {
  return ((candidate.cost.inputPer1M ?? 0) * promptTokens + outputPricePer1M(candidate) * completionTokens) / 1e6;
}
