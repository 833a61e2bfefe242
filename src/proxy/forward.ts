/**
 * One proxied OpenAI request: plan the attempts, try them in order (failing
 * over only before anything reached the client), relay the answer, and fill
 * the request record. Aborts the upstream the moment the client leaves.
 */
import type { FastifyReply } from 'fastify';
import { AttemptError, closeAttempt, openAttempt, type OpenedAttempt } from '../backends/attempt.ts';
import { markUnreachable } from '../backends/health.ts';
import type { Route, Target } from '../backends/registry.ts';
import { gatewayError, type GatewayError } from '../errors.ts';
import { planAttempts } from '../routing/plan.ts';
import { spliceTopLevel, type SpliceEdit } from './json-splice.ts';
import type { Endpoint, RequestRecord } from './record.ts';
import { assembleStreamAnswer, readBody, readJsonAnswer, type JsonAnswer } from './relay-json.ts';
import { relayStream } from './relay-stream.ts';
import { normaliseUpstreamError } from './upstream-error.ts';

const paths: Record<Endpoint, string> = {
  chat: '/v1/chat/completions',
  completion: '/v1/completions',
  embedding: '/v1/embeddings',
};

/** A validated request ready to forward. */
export interface ForwardInput {
  endpoint: Endpoint;
  route: Route;
  /** The model name exactly as the client sent it (public name or alias). */
  requestedModel: string;
  raw: string;
  json: Record<string, unknown>;
  promptParam: string;
  record: RequestRecord;
}

/** The upstream body: the client's bytes with `model` (and stream options where needed) replaced. */
export function upstreamBody(input: ForwardInput, target: Target, upstreamStream: boolean): string {
  const edits: SpliceEdit[] = [];
  if (target.model !== input.requestedModel) edits.push({ key: 'model', value: JSON.stringify(target.model) });
  if (upstreamStream) {
    if (input.json.stream !== true) edits.push({ key: 'stream', value: 'true' });
    const options = input.json.stream_options;
    if (!(options && typeof options === 'object' && (options as { include_usage?: unknown }).include_usage === true)) {
      const merged = options && typeof options === 'object' && !Array.isArray(options) ? { ...options, include_usage: true } : { include_usage: true };
      edits.push({ key: 'stream_options', value: JSON.stringify(merged) });
    }
  }
  return spliceTopLevel(input.raw, edits);
}

function clientSignalFor(reply: FastifyReply): AbortController {
  const controller = new AbortController();
  const raw = reply.raw;
  if (raw.destroyed || raw.socket?.destroyed) controller.abort();
  else raw.once('close', () => {
    if (!raw.writableFinished) controller.abort();
  });
  return controller;
}

function routeHeaders(record: RequestRecord, target: Target): Record<string, string> {
  return {
    'x-switchyard-backend': target.backend.id,
    'x-switchyard-attempts': String(record.attempts),
    'x-switchyard-route-reason': record.routeReason ?? 'default',
  };
}

/**
 * Forwards the request. Resolves once the answer was sent (or the stream was
 * relayed); throws a GatewayError when no attempt succeeded and nothing was
 * sent yet. `onStreamEnd` runs after a hijacked (streaming) reply ends.
 */
export async function forward(reply: FastifyReply, input: ForwardInput, onStreamEnd: () => void): Promise<void> {
  const { record, route } = input;
  const clientStream = input.endpoint !== 'embedding' && input.json.stream === true;
  const streamOptions = input.json.stream_options as { include_usage?: unknown } | undefined;
  const clientWantsUsage = clientStream && streamOptions?.include_usage === true;
  const publicJson = JSON.stringify(input.requestedModel);
  const client = clientSignalFor(reply);
  record.stream = clientStream;

  const plan = planAttempts(route);
  record.routeReason = plan.reason;
  if (plan.targets.length === 0) {
    throw gatewayError('SWY_ERR_NO_BACKEND', {
      message: `No healthy backend serves "${input.requestedModel}" right now. Retry after the time in retry-after.`,
      retryAfterSeconds: 5,
    });
  }

  let lastError: AttemptError | undefined;
  for (const target of plan.targets) {
    if (client.signal.aborted) break;
    const backend = target.backend;
    record.attempts++;
    record.backend = backend.id;
    if (record.attempts > 1) record.routeReason = `failover:${lastError?.kind ?? 'error'}`;
    const upstreamStream = clientStream || (input.endpoint !== 'embedding' && backend.streamUpstream);
    let attempt: OpenedAttempt | undefined;
    const attemptStart = performance.now();
    try {
      attempt = await openAttempt(backend, paths[input.endpoint], upstreamBody(input, target, upstreamStream), record.requestId, client.signal);
      if (attempt.statusCode !== 200) {
        const text = await readBody(attempt, client.signal, backend);
        const normalised = normaliseUpstreamError(attempt.statusCode, text, backend.id, input.promptParam);
        const retryAfter = attempt.headers['retry-after'];
        throw new AttemptError('upstream-status', normalised.error, {
          retryable: normalised.retryable,
          upstreamStatus: attempt.statusCode,
          ...(typeof retryAfter === 'string' ? { retryAfter } : {}),
        });
      }
      if (clientStream) {
        const opened = attempt;
        const outcome = await relayStream({
          backend,
          attempt: opened,
          raw: reply.raw,
          clientSignal: client.signal,
          publicJson,
          clientWantsUsage,
          promptParam: input.promptParam,
          commit: () => {
            reply.hijack();
            record.status = 200;
            return {
              ...(reply.getHeaders() as Record<string, string>),
              'content-type': 'text/event-stream; charset=utf-8',
              'cache-control': 'no-cache',
              'x-accel-buffering': 'no',
              ...routeHeaders(record, target),
            };
          },
        });
        record.usage = outcome.usage;
        if (outcome.firstEventMs !== undefined) record.firstByteMs = attemptStart - record.startedAt + outcome.firstEventMs;
        record.clientClosed = outcome.clientClosed;
        if (outcome.error) record.errorCode = outcome.error.code ?? 'error';
        record.upstreamMs += performance.now() - attemptStart;
        onStreamEnd();
        return;
      }
      const answer: JsonAnswer = upstreamStream
        ? await assembleStreamAnswer(attempt, client.signal, backend, input.endpoint === 'chat' ? 'chat' : 'completion', input.requestedModel, input.promptParam)
        : await readJsonAnswer(attempt, client.signal, backend, publicJson);
      record.upstreamMs += performance.now() - attemptStart;
      record.usage = answer.usage;
      if (answer.firstByteMs !== undefined) record.firstByteMs = attemptStart - record.startedAt + answer.firstByteMs;
      record.status = 200;
      reply.code(200).headers(routeHeaders(record, target)).header('content-type', 'application/json').send(answer.body);
      return;
    } catch (error) {
      record.upstreamMs += performance.now() - attemptStart;
      if (!(error instanceof AttemptError)) throw error;
      lastError = error;
      record.failures.push(`${backend.id}:${error.kind}`);
      if (error.kind === 'connect-error') markUnreachable(backend, error.message);
      if (error.kind === 'client-closed' || !error.retryable) break;
    } finally {
      if (attempt) closeAttempt(backend, attempt);
    }
  }

  if (client.signal.aborted) {
    record.clientClosed = true;
    record.status = 499;
    reply.hijack();
    if (!reply.raw.destroyed) reply.raw.destroy();
    onStreamEnd();
    return;
  }
  const failure: GatewayError = lastError?.clientError ?? gatewayError('SWY_ERR_UPSTREAM_UNREACHABLE');
  if (lastError?.retryAfter) reply.header('retry-after', lastError.retryAfter);
  throw failure;
}
