/**
 * One routing decision: filters, tiers, prefix affinity, then the route's
 * policy. Pure over a snapshot; the caller turns the order into attempts.
 *
 * 1. Excluded (listed in `scores` with the reason, never tried): unhealthy
 *    (`unhealthy`), circuit open (`circuit-open`), a context window the request
 *    certainly does not fit (`context-length`). When no candidate's window can
 *    hold it, healthy or not, the request is rejected `context_length_exceeded`
 *    (it would fail anywhere); when nothing usable remains, `no_backend_available`.
 *    Context fit: a window must hold the prompt plus the client's max_tokens
 *    where the runtime counts it (not llama.cpp), or plus `minOutput` (room for
 *    the answer) when the client set none — never the default budget the
 *    predictions assume. "Certainly does not fit" is judged on the prompt's
 *    lower bound (context.promptFloor, computed only when the estimate does
 *    not fit), so the gateway never refuses what the runtime would serve. A
 *    candidate the estimate does not fit but the bound might ("stretch") is
 *    kept, after every candidate the estimate fits, largest room first: when
 *    only stretch candidates remain the request goes to the largest window
 *    (reason `largest-window`) and the runtime's own context error speaks.
 * 2. `onSloMiss: reject` and no usable candidate predicted to meet the SLO:
 *    rejected `slo_unmet` with a retry-after (see sloRejection).
 * 3. Tiers, in attempt order:
 *    - a half-open candidate with nothing in flight goes first as the
 *      breaker's probe (reason `probe`): the breaker closes only after a real
 *      request succeeds, and a failed probe costs one failover, not an error;
 *    - on the predicting policies (cheapest, fastest, balanced), an unmeasured
 *      candidate (no request finished there yet) with nothing in flight goes
 *      first (reason `explore`) for a request of at most EXPLORE_MAX_PROMPT
 *      tokens: one request at a time measures it, while the others are
 *      predicted from its conservative prior, so a new backend is neither
 *      flooded nor left unused because its prior looks slow (a long prompt is
 *      a poor probe: it may be slow anywhere);
 *    - candidates below maxConcurrency, ordered by affinity then the policy;
 *    - candidates at maxConcurrency (the admission queue waits for them);
 *    - half-open candidates whose probe is still in flight (last resort);
 *    - stretch candidates (see 1), largest room first.
 * 4. Affinity (request.affinityKey set): the key's rendezvous home among the
 *    usable closed-circuit candidates goes first (reason `affinity`) unless it
 *    is at maxConcurrency, above the load bound, or predicted to miss the
 *    SLO; then the policy decides. On `cheapest` routes the home is chosen
 *    only among the candidates as cheap as the cheapest (within 5%), so
 *    affinity spreads keys over equal-priced replicas but never pays more.
 */
import { hashString } from '../hash.ts';
import { DEFAULT_LOAD_FACTOR, rendezvousScore, withinLoadBound } from './affinity.ts';
import { rankers } from './policies/index.ts';
import { drawIndex, entryFor, meetsSlo, NEAR_TIE_RELATIVE, scoreOf, sloRejection, type Entry, type Ranker } from './policies/rank.ts';
import type { CandidateState, ContextNeed, RouteRequest, RoutingDecision } from './types.ts';

function rejection(entries: readonly Entry[], reason: string, reject: NonNullable<RoutingDecision['reject']>): RoutingDecision {
  return { order: [], reason, scores: entries.map(scoreOf), reject };
}

/** Tokens a candidate's window must hold besides the prompt. */
function completionNeed(candidate: CandidateState, context: ContextNeed): number {
  if (context.maxTokens === undefined || candidate.contextCountsMaxTokens === false) return context.minOutput;
  return Math.max(context.maxTokens, context.minOutput);
}

function contextMessage(promptFloor: number, completion: number, context: ContextNeed, largest: number): string {
  const answer = completion === 0 ? '' : context.maxTokens !== undefined && completion === context.maxTokens ? ` + max_tokens ${completion}` : ` + ${completion} for the answer`;
  return (
    `This request needs at least ${promptFloor + completion} tokens (a prompt of at least ${promptFloor} tokens${answer}), ` +
    `but the largest context window of this model's backends is ${largest} tokens. Shorten the messages or lower max_tokens.`
  );
}

/** Stretch candidates in attempt order: the most room (window less estimated need) first. */
function byRoom(stretch: Array<{ entry: Entry; room: number }>): Entry[] {
  return stretch.sort((a, b) => b.room - a.room).map((item) => item.entry);
}

/** Cost ceiling for affinity homes on `cheapest` routes; Infinity elsewhere. */
function affinityCostLimit(request: RouteRequest, open: readonly Entry[], full: readonly Entry[]): number {
  if (request.policy !== 'cheapest') return Number.POSITIVE_INFINITY;
  let min = Number.POSITIVE_INFINITY;
  for (const entry of open) if (entry.cost < min) min = entry.cost;
  for (const entry of full) if (entry.cost < min) min = entry.cost;
  return min + Math.max(NEAR_TIE_RELATIVE * Math.abs(min), 1e-9);
}

/** The affinity home when it may take this request, else undefined. */
function affinityChoice(key: string, request: RouteRequest, open: readonly Entry[], full: readonly Entry[], loadFactor: number): Entry | undefined {
  const keyHash = hashString(key);
  const useWeights = request.policy === 'weighted';
  const costLimit = affinityCostLimit(request, open, full);
  let home: Entry | undefined;
  let homeScore = -1;
  let totalInflight = 0;
  let totalConcurrency = 0;
  // Candidates at capacity stay in the hash ring so a short burst does not remap their keys.
  const count = open.length + full.length;
  for (let index = 0; index < count; index++) {
    const entry = (index < open.length ? open[index] : full[index - open.length]) as Entry;
    if (entry.cost > costLimit) continue;
    const candidate = entry.candidate;
    totalInflight += candidate.inflight;
    totalConcurrency += Math.max(1, candidate.maxConcurrency);
    const score = rendezvousScore(keyHash, candidate.backend, useWeights ? candidate.weight : 1);
    if (score > homeScore) {
      home = entry;
      homeScore = score;
    }
  }
  if (home === undefined) return undefined;
  const candidate = home.candidate;
  if (candidate.inflight >= candidate.maxConcurrency) return undefined;
  if (!withinLoadBound(candidate.inflight, Math.max(1, candidate.maxConcurrency), totalInflight, totalConcurrency, loadFactor)) return undefined;
  if (!meetsSlo(home, request)) return undefined;
  return home;
}

/** One of the entries with nothing in flight (and, when given, accepted), drawn at random. */
function pickIdle(entries: readonly Entry[], random: () => number, accept?: (entry: Entry) => boolean): Entry | undefined {
  if (entries.length === 0) return undefined; // the common case for half-open candidates: no closure made
  return entries[drawIndex(entries, entries.length, (entry) => entry.candidate.inflight === 0 && (accept === undefined || accept(entry)), random)];
}

const PREDICTING = new Set(['cheapest', 'fastest', 'balanced']);
/** Requests with longer (estimated) prompts do not explore unmeasured backends. */
const EXPLORE_MAX_PROMPT = 1024;
const unmeasured = (entry: Entry): boolean => entry.candidate.unmeasured === true;

/** Ranks one tier with the policy and appends it; returns the decision's reason so far. */
function appendTier(order: string[], ranker: Ranker, tier: Entry[], request: RouteRequest, random: () => number, skip: Entry | undefined, reason: string): string {
  if (tier.length === 0) return reason;
  const ranking = ranker(tier, request, random);
  for (const entry of ranking.order) if (entry !== skip) order.push(entry.candidate.backend);
  return reason === '' ? ranking.reason : reason;
}

/**
 * Orders the candidates for one request (see the file comment for the rules).
 * `loadFactor` is the affinity bound (1 + ε); `random` returns [0, 1).
 */
export function decide(
  candidates: readonly CandidateState[],
  request: RouteRequest,
  random: () => number = Math.random,
  loadFactor: number = DEFAULT_LOAD_FACTOR,
): RoutingDecision {
  const entries: Entry[] = [];
  const open: Entry[] = [];
  const full: Entry[] = [];
  const halfOpen: Entry[] = [];
  const stretch: Array<{ entry: Entry; room: number }> = [];
  const context = request.context;
  let promptFloor: number | undefined;
  let mightFit = false;
  let largest: { window: number; completion: number } | undefined;
  for (const candidate of candidates) {
    const entry = entryFor(candidate, request);
    entries.push(entry);
    const window = candidate.contextLength;
    // 'likely': the estimate fits; 'maybe': only the lower bound does; 'no': not even the lower bound.
    let fit: 'likely' | 'maybe' | 'no' = 'likely';
    let room = 0;
    if (window !== undefined) {
      const completion = completionNeed(candidate, context);
      room = window - request.promptTokens - completion;
      if (room < 0) {
        promptFloor ??= context.promptFloor();
        fit = promptFloor + completion > window ? 'no' : 'maybe';
        if (fit === 'no' && (largest === undefined || window > largest.window)) largest = { window, completion };
      }
    }
    if (fit !== 'no') mightFit = true;
    if (candidate.circuit === 'open') entry.excluded = 'circuit-open';
    else if (!candidate.healthy) entry.excluded = 'unhealthy';
    else if (fit === 'no') entry.excluded = 'context-length';
    else if (fit === 'maybe') stretch.push({ entry, room });
    else if (candidate.circuit === 'half-open') halfOpen.push(entry);
    else if (candidate.inflight >= candidate.maxConcurrency) full.push(entry);
    else open.push(entry);
  }
  if (entries.length > 0 && !mightFit && largest !== undefined) {
    const message = contextMessage(promptFloor ?? 0, largest.completion, context, largest.window);
    return rejection(entries, 'context-length-exceeded', { code: 'context_length_exceeded', message });
  }
  if (open.length + full.length + halfOpen.length + stretch.length === 0) {
    return rejection(entries, 'no-backend', {
      code: 'no_backend_available',
      message: 'No backend of this model is healthy right now (down, loading, or circuit open); retry shortly.',
    });
  }
  const reject = sloRejection(entries, request);
  if (reject) return rejection(entries, 'slo-unmet', reject);

  const ranker: Ranker = rankers[request.policy];
  let first = pickIdle(halfOpen, random);
  let reason = first === undefined ? '' : 'probe';
  if (first === undefined && PREDICTING.has(request.policy) && request.promptTokens <= EXPLORE_MAX_PROMPT) {
    first = pickIdle(open, random, unmeasured);
    if (first !== undefined) reason = 'explore';
  }
  if (first === undefined && request.affinityKey !== undefined && open.length > 0) {
    first = affinityChoice(request.affinityKey, request, open, full, loadFactor);
    if (first !== undefined) reason = 'affinity';
  }
  const order: string[] = [];
  if (first !== undefined) order.push(first.candidate.backend);
  reason = appendTier(order, ranker, open, request, random, first, reason);
  reason = appendTier(order, ranker, full, request, random, first, reason);
  reason = appendTier(order, ranker, halfOpen, request, random, first, reason || 'last-resort');
  if (stretch.length > 0) {
    if (order.length === 0) reason = 'largest-window';
    for (const entry of byRoom(stretch)) order.push(entry.candidate.backend);
  }
  return { order, reason, scores: entries.map(scoreOf) };
}
