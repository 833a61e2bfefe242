/**
 * Tokens per minute and budgets around one request: before the call reserve
 * the estimated prompt plus max_tokens (tokens) and its worst-case cost
 * (budgets), in one Redis round trip; after it settle both with the real usage
 * and cost (streams and cancelled requests are charged what they used; a
 * request no backend worked on releases everything).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { SwitchyardState } from '../state.ts';
import { budgetError, budgetSpent, type BudgetReservation } from '../limits/budget.ts';
import { rateLimitHeaders, retryAfterHeaders } from '../limits/headers.ts';
import { tokenLimitError, type Reservation } from '../limits/token-window.ts';
import { estimatePromptTokens, requestedCompletionTokens } from '../proxy/estimate.ts';
import type { RequestRecord } from '../proxy/record.ts';
import type { Route } from '../backends/registry.ts';
import { requestCost } from '../routing/predict.ts';

/** Settles a metered request once it is over. Never throws. */
export type Settle = () => Promise<void>;

const nothing: Settle = async () => undefined;

/**
 * Usage of a request the backend worked on but did not report usage for (a client that left, a stream cut
 * short): the prompt estimate plus the chunks relayed. Undefined when no backend did any work.
 */
function estimatedUsage(record: RequestRecord, json: Record<string, unknown>): { prompt: number; completion: number } | undefined {
  if (record.attempts === 0) return undefined; // no backend took it
  // Every attempt failed: no work to charge. A request the client left or the gateway ended (shutdown) while a
  // backend worked on it is charged its prompt and what was relayed.
  if (record.firstByteMs === undefined && !record.clientClosed && record.errorName !== 'SWY_ERR_SHUTTING_DOWN') return undefined;
  return { prompt: estimatePromptTokens(json), completion: record.streamedChunks };
}

/** Tokens charged for a request: its usage, else what can be told of the work done. */
function usedTokens(record: RequestRecord, json: Record<string, unknown>): number {
  if (record.usage) return record.usage.total_tokens;
  const estimate = estimatedUsage(record, json);
  return estimate ? estimate.prompt + estimate.completion : 0;
}

/** Reserves tokens and budgets; throws 429 when either refuses. No promise when nothing is metered. */
export function meter(state: SwitchyardState, request: FastifyRequest, reply: FastifyReply, route: Route, json: Record<string, unknown>): Settle | Promise<Settle> {
  const subject = request.limitSubject;
  if (!subject || (subject.tpm === undefined && subject.budgets.length === 0)) return nothing;
  // Open from the first Redis call until settled: shutdown waits for every open one before Redis closes.
  state.limits.open.add();
  const reserving = reserve(state, request, reply, route, json, subject);
  reserving.catch(() => state.limits.open.done()); // refused: nothing stays held
  return reserving;
}

async function reserve(
  state: SwitchyardState,
  request: FastifyRequest,
  reply: FastifyReply,
  route: Route,
  json: Record<string, unknown>,
  subject: NonNullable<FastifyRequest['limitSubject']>,
): Promise<Settle> {
  const { limits, config } = state;
  const { prompt, completion } = requestSize(json, config.limits.reserveCompletionTokens);
  const needed = prompt + completion;
  // Both go to Redis in the same round trip.
  const [tokenResult, budgetResult] = await Promise.allSettled([
    subject.tpm === undefined ? undefined : limits.tokens.reserve(subject.id, subject.tpm, needed),
    subject.budgets.length === 0 ? undefined : limits.budgets.reserve(subject.budgets, worstCaseCost(route, prompt, completion), leaseMs(route, config)),
  ]);
  const tokens = tokenResult.status === 'fulfilled' ? tokenResult.value : undefined;
  const budget = budgetResult.status === 'fulfilled' ? budgetResult.value : undefined;
  if (tokenResult.status === 'rejected' || budgetResult.status === 'rejected' || tokens?.allowed === false || budget?.allowed === false) {
    // Refused: give back whatever the other one took.
    await Promise.all([limits.tokens.settle(tokens?.reservation, 0), limits.budgets.settle(budget?.reservation, 0)]);
  }
  if (tokenResult.status === 'rejected') throw tokenResult.reason;
  if (budgetResult.status === 'rejected') throw budgetResult.reason;
  if (tokens && !tokens.allowed) {
    reply.headers(rateLimitHeaders({ tokens })).headers(retryAfterHeaders(tokens.retryAfterMs, !tokens.tooLarge));
    throw tokenLimitError(tokens, needed);
  }
  if (tokens && !tokens.degraded) reply.headers(rateLimitHeaders({ tokens }));
  if (budget && !budget.allowed) {
    const spent = budgetSpent(budget);
    reply.headers(retryAfterHeaders(spent ? (budget.exhausted?.resetMs ?? 1000) : 1000, !spent));
    throw budgetError(budget);
  }
  return settleCost(state, request, json, tokens?.reservation, budget?.reservation);
}

/** Estimated prompt and completion budget (none for an embedding: `input` alone), as reservationTokens counts them. */
function requestSize(json: Readonly<Record<string, unknown>>, fallbackCompletion: number): { prompt: number; completion: number } {
  const prompt = estimatePromptTokens(json);
  const embedding = json.input !== undefined && json.messages === undefined && json.prompt === undefined;
  return { prompt, completion: embedding ? 0 : requestedCompletionTokens(json, fallbackCompletion) };
}

/**
 * The most a request can cost: its prompt estimate and completion budget at the price of the route's most
 * expensive target (failover may land on any of them).
 */
function worstCaseCost(route: Route, promptTokens: number, completionTokens: number): number {
  let worst = 0;
  for (const target of route.targets) {
    const backend = target.backend;
    const cost = requestCost({ cost: backend.config.cost, throughputTokensPerSecond: backend.capacityTokensPerSecond(target.model) }, promptTokens, completionTokens);
    if (cost > worst) worst = cost;
  }
  return worst;
}

const unboundedLeaseMs = 24 * 3_600_000;
const leases = new WeakMap<Route, number>();

/**
 * The longest a request on this route can hold a budget reservation: every attempt (retries + 1) may queue and
 * run to its total timeout, then shutdown may wait out its grace. Only a replica that died mid-request needs it.
 */
function leaseMs(route: Route, config: SwitchyardState['config']): number {
  let lease = leases.get(route);
  if (lease === undefined) {
    let attempt = 0;
    for (const target of route.targets) {
      const { timeouts, queue } = target.backend.config;
      attempt = Math.max(attempt, timeouts.totalMs > 0 ? timeouts.totalMs + queue.timeoutMs : unboundedLeaseMs);
    }
    lease = Math.min(unboundedLeaseMs, attempt * (route.config.retries + 1)) + config.server.shutdownGraceMs + 60_000;
    leases.set(route, lease);
  }
  return lease;
}

function settleCost(
  state: SwitchyardState,
  request: FastifyRequest,
  json: Record<string, unknown>,
  tokens: Reservation | undefined,
  budget: BudgetReservation | undefined,
): Settle {
  let settled = false;
  return async () => {
    if (settled) return;
    settled = true;
    const record = request.record;
    try {
      await Promise.all([state.limits.tokens.settle(tokens, usedTokens(record, json)), state.limits.budgets.settle(budget, record.cost)]);
    } finally {
      state.limits.open.done();
    }
  };
}

/** Works out the request's cost from its usage and the backend's cost model (0 for cache hits). */
export function costOf(route: Route, record: RequestRecord, json: Record<string, unknown>): number {
  if (record.cache === 'hit') return 0;
  const tokens = record.usage ? { prompt: record.usage.prompt_tokens, completion: record.usage.completion_tokens } : estimatedUsage(record, json);
  if (!tokens) return 0;
  const target = route.targets.find((candidate) => candidate.backend.id === record.backend);
  if (!target) return 0;
  // Only the cost model and throughput matter here: no full routing snapshot per request.
  const backend = target.backend;
  return requestCost({ cost: backend.config.cost, throughputTokensPerSecond: backend.capacityTokensPerSecond(target.model) }, tokens.prompt, tokens.completion);
}
