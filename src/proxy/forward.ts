/**
 * One proxied request, whatever its surface: plan the attempts, try them in
 * order (failing over only before anything reached the client), relay the
 * answer through the call's codec, and fill the request record. Aborts the
 * upstream the moment the client leaves.
 */
import { guardedStream, type StreamShape, type TextFilter } from '../guard/stream-guard.ts';
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import { AttemptError, ClientLink, startAttempt, type Attempt } from '../backends/attempt.ts';
import type { Route, Target } from '../backends/registry.ts';
import { applyLoadReport } from '../backends/scrape.ts';
import { gatewayError, type GatewayError } from '../errors.ts';
import { spliceTopLevel } from '../wire/json-splice.ts';
import type { Priority } from '../routing/admission.ts';
import type { RoutePlan, Router } from '../routing/router.ts';
import type { ContextNeed, PolicyName } from '../routing/types.ts';
import type { SurfaceSupport } from '../surfaces/support.ts';
import type { RequestView, ServeMode, Surface, UpstreamCall } from '../surfaces/surface.ts';
import type { AttemptTrace } from '../tracing/trace.ts';
import type { AnswerCapture, ClientAnswer } from './codec.ts';
import type { InFlight } from './in-flight.ts';
import { noteError, type RequestRecord } from './record.ts';
import { assembleStreamAnswer } from './relay-json.ts';
import { abandon, sendRawJson, writeRawHead } from './raw-reply.ts';
import { relayStream } from './relay-stream.ts';
import { upstreamFailure } from './upstream-error.ts';

/** A validated request ready to forward. */
export interface ForwardInput {
  surface: Surface;
  view: RequestView;
  route: Route;
  raw: string;
  json: Record<string, unknown>;
  record: RequestRecord;
  /** What the surface read before parsing (see Surface.prepare). */
  prepared: unknown;
}

const linkOf = Symbol('switchyard.clientLink');
const inFlightOf = Symbol('switchyard.inFlight');
type LinkedResponse = ServerResponse & { [linkOf]?: ClientLink; [inFlightOf]?: InFlight | undefined };

/** The response's 'close' listener: one function for every request (no closure or once-wrapper per request). */
function clientClosed(this: LinkedResponse): void {
  const link = this[linkOf];
  if (link === undefined) return;
  this[inFlightOf]?.delete(link);
  if (!this.writableFinished) link.leave();
}

function clientLinkFor(reply: FastifyReply, inFlight: InFlight | undefined): ClientLink {
  const link = new ClientLink();
  const raw = reply.raw as LinkedResponse;
  if (raw.destroyed || raw.socket?.destroyed) link.leave();
  else {
    inFlight?.add(link);
    raw[linkOf] = link;
    raw[inFlightOf] = inFlight;
    raw.on('close', clientClosed);
  }
  return link;
}

function routeHeaders(record: RequestRecord, target: Target, call: UpstreamCall | undefined): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {
    'x-switchyard-backend': target.backend.id,
    'x-switchyard-attempts': String(record.attempts),
    'x-switchyard-route-reason': record.routeReason ?? 'default',
  };
  if (call?.translated !== undefined) headers['x-switchyard-translated'] = call.translated;
  return headers;
}

/** Per-request routing inputs taken from headers and the body. */
export interface ForwardContext {
  router: Router;
  policy: PolicyName;
  priority: Priority;
  affinityKey: string | undefined;
  promptTokens: number;
  maxTokens: number;
  /** What the context-window check counts (see routing/decide.ts). */
  context: ContextNeed;
  capture?: AnswerCapture | undefined;
  /** How each backend serves the surface (native, translated, not at all). */
  support: SurfaceSupport;
  /** Where the request is listed while it runs, so a shutdown can end it properly. */
  inFlight?: InFlight | undefined;
  /** The data zones the request may reach (undefined: every zone). */
  zones?: ReadonlySet<string> | undefined;
  /** The tenant's prefix-cache salt when the model isolates tenants (see isolation.ts). */
  salt?: string | undefined;
  /** The guard's filter for a streamed answer's text (restore, output scan), when one applies (guard/answer.ts). */
  streamFilter?: (() => TextFilter) | undefined;
}

/** The stream protocol an attempt's upstream speaks: the surface's own when native, else chat. */
function streamShape(surface: Surface, mode: ServeMode): StreamShape {
  if (mode !== 'native') return 'chat';
  const family = surface.family ?? surface.name;
  return family === 'responses' || family === 'messages' ? family : 'chat';
}

function rejection(decision: RoutePlan['decision'], input: ForwardInput): GatewayError {
  const reject = decision.reject;
  if (reject?.code === 'context_length_exceeded') return gatewayError('SWY_ERR_CONTEXT_LENGTH', { message: reject.message, param: input.view.promptParam });
  if (reject?.code === 'no_backend_in_zone') return gatewayError('SWY_ERR_NO_BACKEND_IN_ZONE', { message: reject.message, retryAfterSeconds: 5 });
  if (reject?.code === 'slo_unmet') return gatewayError('SWY_ERR_SLO_UNMET', { message: reject.message, retryAfterSeconds: reject.retryAfterSeconds ?? 1 });
  return gatewayError('SWY_ERR_NO_BACKEND', {
    message: reject?.message ?? `No healthy backend serves "${input.view.model}" right now. Retry after the time in retry-after.`,
    retryAfterSeconds: reject?.retryAfterSeconds ?? 5,
  });
}

/**
 * Forwards the request. Resolves once the answer was sent past Fastify (or
 * the stream was relayed, or the client left: see raw-reply.ts); throws a
 * GatewayError when no attempt succeeded and nothing was sent yet.
 */
export async function forward(reply: FastifyReply, input: ForwardInput, context: ForwardContext): Promise<void> {
  const { record, route, surface, view } = input;
  const { router } = context;
  const clientStream = view.stream;
  const promptParam = view.promptParam;
  const client = clientLinkFor(reply, context.inFlight);
  record.stream = clientStream;

  const plan = router.plan(route, {
    policy: context.policy,
    promptTokens: context.promptTokens,
    maxTokens: context.maxTokens,
    context: context.context,
    affinityKey: context.affinityKey,
    zones: context.zones,
  });
  record.routeReason = plan.decision.reason;
  if (plan.decision.reject || plan.targets.length === 0) throw rejection(plan.decision, input);

  const deadline = route.config.deadlineMs > 0 ? record.startedAt + route.config.deadlineMs : Number.POSITIVE_INFINITY;
  const support = context.support;
  const remaining = plan.targets.filter((target) => support.mode(target.backend, surface) !== undefined);
  if (remaining.length === 0) {
    throw gatewayError('SWY_ERR_SURFACE_NOT_SERVED', {
      message: `No backend of model \`${route.name}\` serves ${surface.routes[0]?.url ?? surface.name}; the operator can enable it with backends[].surfaces.`,
    });
  }
  const planned = { view, raw: input.raw, json: input.json, prepared: input.prepared, capture: context.capture, requestId: record.requestId };
  let lastError: AttemptError | undefined;
  while (remaining.length > 0 && !client.left && !client.stoppedWith && performance.now() < deadline) {
    let target: Target;
    try {
      const acquired = router.acquire(remaining, context.priority, client);
      if (acquired instanceof Promise) {
        // No slot free: the wait in the first target's admission queue is a span of its own when tracing.
        const queued = record.trace?.queued((remaining[0] as Target).backend.id);
        try {
          target = await acquired;
        } finally {
          queued?.end();
        }
      } else target = acquired;
    } catch (error) {
      if (client.left || client.stoppedWith) break;
      throw error;
    }
    remaining.splice(remaining.indexOf(target), 1);
    const backend = target.backend;
    const job = router.started(target, plan);
    record.attempts++;
    record.backend = backend.id;
    if (record.attempts > 1) record.routeReason = `failover:${lastError?.kind ?? 'error'}`;
    // guard.restore on a stream works on chat deltas: Responses and Messages streams go through the chat translation.
    const restoring = record.restore !== undefined && clientStream;
    const served = support.mode(backend, surface) as ServeMode;
    const mode = restoring ? support.restoringMode(backend, surface, served) : served;
    let attempt: Attempt | undefined;
    let traced: AttemptTrace | undefined;
    let failure: string | undefined;
    const attemptStart = performance.now();
    let firstByteMs: number | undefined;
    let learnt = false;
    try {
      const plannedCall = surface.plan(planned, target, mode);
      if ('local' in plannedCall) {
        // The surface answers this one itself (e.g. a token count where the backend has no endpoint for it).
        record.status = 200;
        record.usage = plannedCall.local.usage;
        const headers = routeHeaders(record, target, undefined);
        headers['x-switchyard-translated'] = plannedCall.translated;
        sendRawJson(reply, headers, plannedCall.local.body);
        return;
      }
      const call = plannedCall;
      // Isolation edits go on every generating call (native or translated); the client's own cache_salt is replaced.
      const isolation = context.salt !== undefined && surface.cache?.sampled === true ? backend.kind.tenantIsolation : undefined;
      if (isolation) call.body = spliceTopLevel(call.body, isolation(context.salt as string));
      const upstreamStream = call.stream;
      record.streamedUpstream = upstreamStream;
      traced = record.trace?.attempt(target, record.attempts, record.routeReason, record.endpoint);
      attempt = startAttempt(backend, call.path, call.body, record.requestId, client, backend.loadReportHeaders, upstreamStream && backend.kind.closesAfterStream, traced?.headers);
      // A JSON answer is awaited whole (one wait for the exchange); a stream from its head.
      let text: string | undefined;
      if (upstreamStream) await attempt.head();
      else text = await attempt.text();
      if (backend.loadReportHeaders) applyLoadReport(backend, attempt.headers, Date.now());
      if (attempt.statusCode !== 200) {
        text ??= await attempt.text();
        // A runtime that should serve this surface natively but does not know the path: translate from now on.
        learnt = attempt.statusCode === 404 && mode === 'native' && support.learnFrom404(backend, surface, text);
        const retryAfter = attempt.headers['retry-after'];
        throw upstreamFailure(attempt.statusCode, text, backend.id, promptParam, typeof retryAfter === 'string' ? retryAfter : undefined);
      }
      if (clientStream) {
        // The guard's stream filter: values back into the upstream's deltas (planCache keeps such a stream out of the
        // cache), secrets out.
        const outcome = await relayStream({
          backend,
          attempt,
          raw: reply.raw,
          client,
          dialect: context.streamFilter ? guardedStream(call.codec.stream(), streamShape(surface, mode), context.streamFilter) : call.codec.stream(),
          capture: context.capture,
          commit: () => {
            router.firstToken(backend, job, performance.now() - attemptStart);
            record.status = 200;
            const headers = routeHeaders(record, target, call);
            headers['content-type'] = 'text/event-stream; charset=utf-8';
            headers['cache-control'] = 'no-cache';
            headers['x-accel-buffering'] = 'no';
            writeRawHead(reply, 200, headers);
          },
        });
        firstByteMs = outcome.firstEventMs;
        record.usage = outcome.usage;
        if (firstByteMs !== undefined) record.firstByteMs = attemptStart - record.startedAt + firstByteMs;
        record.clientClosed = outcome.clientClosed;
        record.streamedChunks = outcome.chunks;
        if (outcome.error) {
          noteError(record, outcome.error);
          failure = outcome.error.errorName;
        } else if (outcome.clientClosed) failure = 'client-closed';
        record.upstreamMs += performance.now() - attemptStart;
        router.feedback(backend, job, {
          ok: !outcome.error && !outcome.clientClosed,
          backendFault: outcome.backendFault,
          ttftMs: firstByteMs,
          tpotMs: tpot(performance.now() - attemptStart, firstByteMs, outcome.usage?.completion_tokens),
          completionTokens: outcome.usage?.completion_tokens,
        });
        return;
      }
      const body = text ?? (await assembleStreamAnswer(attempt, client, backend, call.assemble ?? 'chat', view.model, promptParam));
      const answer: ClientAnswer = call.codec.json(body);
      const answerFirstByteMs = attempt.firstDataMs;
      const elapsed = performance.now() - attemptStart;
      record.upstreamMs += elapsed;
      record.usage = answer.usage;
      if (answerFirstByteMs !== undefined) record.firstByteMs = attemptStart - record.startedAt + answerFirstByteMs;
      record.status = 200;
      const measuredTtft = upstreamStream ? answerFirstByteMs : ttftFromWhole(elapsed, answer.usage?.completion_tokens, job.figures.tpot.value);
      router.feedback(backend, job, {
        ok: true,
        backendFault: false,
        ttftMs: measuredTtft,
        tpotMs: upstreamStream ? tpot(elapsed, measuredTtft, answer.usage?.completion_tokens) : undefined,
        completionTokens: answer.usage?.completion_tokens,
      });
      sendRawJson(reply, routeHeaders(record, target, call), answer.body);
      context.capture?.json?.(answer.body, answer.usage);
      return;
    } catch (error) {
      record.upstreamMs += performance.now() - attemptStart;
      if (!(error instanceof AttemptError)) {
        failure = 'internal';
        throw error;
      }
      lastError = error;
      failure = learnt ? 'not-native' : error.kind;
      record.failures.push(`${backend.id}:${failure}`);
      if (error.detail !== undefined && (reply.log.level === 'debug' || reply.log.level === 'trace')) {
        reply.log.debug({ requestId: record.requestId, backend: backend.id, upstreamStatus: error.upstreamStatus, detail: error.detail }, 'upstream error detail');
      }
      router.feedback(backend, job, { ok: false, backendFault: error.backendFault && !learnt, ttftMs: undefined, tpotMs: undefined, completionTokens: undefined });
      if (error.kind === 'connect-error') backend.markUnreachable(error.message);
      if (learnt)
        remaining.unshift(target); // the same backend again at once, translated
      else if (!error.retryable) break;
    } finally {
      traced?.end(attempt?.statusCode ?? 0, firstByteMs ?? attempt?.firstDataMs, record.streamedUpstream, failure);
      attempt?.close();
      router.release(backend, job);
    }
  }

  if (client.left) {
    record.clientClosed = true;
    record.status = 499;
    abandon(reply);
    return;
  }
  if (client.stoppedWith) {
    // The gateway is shutting down and ended the request before an answer began.
    noteError(record, client.stoppedWith);
    throw client.stoppedWith;
  }
  const failure: GatewayError = lastError?.clientError ?? gatewayError('SWY_ERR_UPSTREAM_UNREACHABLE');
  if (lastError?.retryAfter) reply.header('retry-after', lastError.retryAfter);
  throw failure;
}

/**
 * A plain JSON answer's first byte is its last, so its time to first token is
 * estimated: the whole time less the generation of the later tokens at the
 * backend's average pace (an upper bound while that pace is unknown).
 */
function ttftFromWhole(totalMs: number, completionTokens: number | undefined, tpotMs: number | undefined): number {
  const later = Math.max(0, (completionTokens ?? 1) - 1) * (tpotMs ?? 0);
  return Math.max(0, totalMs - later);
}

/** Time per output token after the first, when there were at least two. */
function tpot(totalMs: number, firstByteMs: number | undefined, completionTokens: number | undefined): number | undefined {
  if (firstByteMs === undefined || completionTokens === undefined || completionTokens < 2) return undefined;
  return (totalMs - firstByteMs) / (completionTokens - 1);
}
