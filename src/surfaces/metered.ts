/**
 * Tokens per minute and budgets around one request: reserve the estimated
 * prompt plus max_tokens before the call, settle with the real usage after
 * (streams and cancelled requests are charged what they used), charge the
 * cost to the key's and tenant's budgets.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { SwitchyardState } from '../state.ts';
import { budgetError } from '../limits/budget.ts';
import { rateLimitHeaders, retryAfterHeaders } from '../limits/headers.ts';
import { tokenLimitError } from '../limits/token-window.ts';
import { estimatePromptTokens, reservationTokens } from '../proxy/estimate.ts';
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
  if (record.firstByteMs === undefined && !record.clientClosed) return undefined; // every attempt failed
  return { prompt: estimatePromptTokens(json), completion: record.streamedChunks };
}

/** Tokens charged for a request: its usage, else what can be told of the work done. */
function usedTokens(record: RequestRecord, json: Record<string, unknown>): number {
  if (record.usage) return record.usage.total_tokens;
  const estimate = estimatedUsage(record, json);
  return estimate ? estimate.prompt + estimate.completion : 0;
}

/** Reserves tokens and checks budgets; throws 429 when either refuses. No promise when nothing is metered. */
export function meter(state: SwitchyardState, request: FastifyRequest, reply: FastifyReply, route: Route, json: Record<string, unknown>): Settle | Promise<Settle> {
  const subject = request.limitSubject;
  if (!subject || (subject.tpm === undefined && subject.budgets.length === 0)) return nothing;
  return reserve(state, request, reply, route, json, subject);
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
  const needed = reservationTokens(json, config.limits.reserveCompletionTokens);
  const [tokens, budget] = await Promise.all([
    subject.tpm === undefined ? undefined : limits.tokens.reserve(subject.id, subject.tpm, needed),
    subject.budgets.length > 0 ? limits.budgets.check(subject.budgets) : undefined,
  ]);
  if (tokens && !tokens.allowed) {
    reply.headers(rateLimitHeaders({ tokens })).headers(retryAfterHeaders(tokens.retryAfterMs, !tokens.tooLarge));
    throw tokenLimitError(tokens, needed);
  }
  if (tokens && !tokens.degraded) reply.headers(rateLimitHeaders({ tokens }));
  if (budget && !budget.allowed) {
    await limits.tokens.settle(tokens?.reservation, 0);
    reply.headers(retryAfterHeaders(budget.exhausted?.resetMs ?? 1000, false));
    throw budgetError(budget);
  }
  return settleCost(state, request, route, json, tokens?.reservation);
}

function settleCost(
  state: SwitchyardState,
  request: FastifyRequest,
  route: Route,
  json: Record<string, unknown>,
  reservation: Parameters<SwitchyardState['limits']['tokens']['settle']>[0],
): Settle {
  return async () => {
    const record = request.record;
    await state.limits.tokens.settle(reservation, usedTokens(record, json));
    const budgets = request.limitSubject?.budgets ?? [];
    if (record.cost > 0 && budgets.length > 0) await state.limits.budgets.charge(budgets, record.cost);
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
  return requestCost({ cost: backend.config.cost, throughputTokensPerSecond: backend.latency.throughput() }, tokens.prompt, tokens.completion);
}
