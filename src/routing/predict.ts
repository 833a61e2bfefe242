/**
 * Latency and cost predictions for one candidate, from the live signals in
 * its snapshot. Pure arithmetic: the hot path runs it for every candidate of
 * every request.
 *
 * Predicted time to first token (ms):
 *
 *   base      = EWMA TTFT, else ttftPriorMs, else 500
 *   tpot      = EWMA TPOT, else tpotPriorMs, else 50
 *               (the router passes priors of 0: an unobserved backend is predicted
 *               optimistically so that it gets traffic and is measured; 500 and 50
 *               apply only to candidates built without priors)
 *   P         = slots (llama.cpp), else running when the runtime reports a queue
 *               (a queue means every sequence slot is busy), else maxConcurrency
 *   occupancy = max(inflight, queued + running) with fresh metrics,
 *               inflight alone when metrics are stale or missing
 *   ahead     = max(0, occupancy + 1 − P)        requests that must finish before ours starts
 *   service   = base + 256 × tpot                mean time one request holds a slot
 *   wait      = ahead × service / P              P slots drain the queue in parallel
 *   TTFT      = base + wait
 *
 * Predicted latency of the whole request = TTFT + maxTokens × tpot.
 *
 * TTFT never decreases as the queue or the in-flight count grows (more
 * running sequences alongside a queue mean more parallelism, so it may fall
 * then). The 256 output tokens per request ahead is an assumption (the
 * gateway's default completion budget when max_tokens is unset); only the
 * ratio between backends matters for routing.
 *
 * The TTFT EWMA is measured from send to first byte, so it already contains
 * the queueing of the requests it was measured on; the formula adds the
 * current queue on top, which errs towards caution under load.
 */
import type { CandidateState, RouteRequest } from './types.ts';

/** TTFT assumed before a backend has been observed (ms). */
export const TTFT_PRIOR_MS = 500;
/** TPOT assumed before a backend has been observed (ms per output token). */
export const TPOT_PRIOR_MS = 50;
/** Output tokens assumed for each request queued ahead of this one. */
export const ASSUMED_OUTPUT_TOKENS = 256;
/**
 * Output tokens per second assumed for a perHour backend whose throughput is
 * not measured yet. Deliberately optimistic: a pessimistic guess would keep a
 * new on-prem backend from getting the traffic that measures it.
 */
export const ASSUMED_THROUGHPUT_TOKENS_PER_SECOND = 1000;

/** EWMA TTFT, or the prior when nothing was observed yet. */
export function baseTtftMs(candidate: CandidateState): number {
  return candidate.ttftMs ?? candidate.ttftPriorMs ?? TTFT_PRIOR_MS;
}

/** Predicted time per output token (ms): EWMA TPOT, or the prior. */
export function predictTpotMs(candidate: CandidateState): number {
  return candidate.tpotMs ?? candidate.tpotPriorMs ?? TPOT_PRIOR_MS;
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

/** Predicted time this request waits for a slot before its prefill starts (ms). */
export function predictWaitMs(candidate: CandidateState): number {
  const parallelism = parallelismOf(candidate);
  const ahead = Math.max(0, occupancyOf(candidate) + 1 - parallelism);
  if (ahead === 0) return 0;
  const service = baseTtftMs(candidate) + ASSUMED_OUTPUT_TOKENS * predictTpotMs(candidate);
  return (ahead * service) / parallelism;
}

/** Predicted time to first token (ms); see the formula at the top of this file. */
export function predictTtftMs(candidate: CandidateState): number {
  return baseTtftMs(candidate) + predictWaitMs(candidate);
}

/** True when a perHour cost has to rest on the assumed throughput. */
export function costIsAssumed(candidate: CandidateState): boolean {
  const throughput = candidate.throughputTokensPerSecond;
  return (candidate.cost.perHour ?? 0) > 0 && (throughput === undefined || !(throughput > 0));
}

/** What pricing needs of a candidate: its cost model and measured throughput. */
export type Priced = Pick<CandidateState, 'cost' | 'throughputTokensPerSecond'>;

/**
 * Price of one million output tokens, perHour converted through throughput:
 * outputPer1M + perHour × 1e6 / (3600 × tokens per second). The GPU hour is
 * charged to output tokens because decoding is what occupies the machine.
 */
export function outputPricePer1M(candidate: Priced): number {
  const perHour = candidate.cost.perHour ?? 0;
  let hourly = 0;
  if (perHour > 0) {
    const measured = candidate.throughputTokensPerSecond;
    const throughput = measured !== undefined && measured > 0 ? measured : ASSUMED_THROUGHPUT_TOKENS_PER_SECOND;
    hourly = (perHour * 1e6) / (3600 * throughput);
  }
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
