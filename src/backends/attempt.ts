/**
 * Exactly one upstream attempt: send the body to a backend over its pool and
 * hand back the response with its deadlines armed. It reports how it failed
 * (kind, retryable) and never decides where to go next.
 */
import type { Dispatcher } from 'undici';
import { gatewayError, type GatewayError } from '../errors.ts';
import type { Backend } from './registry.ts';

/** Why an attempt failed; the router decides from `retryable`. */
export type FailureKind =
  | 'connect-error'
  | 'connection-reset'
  | 'first-byte-timeout'
  | 'idle-timeout'
  | 'total-timeout'
  | 'upstream-status'
  | 'stream-interrupted'
  | 'client-closed';

/** A failed attempt, carrying the error the client would see. */
export class AttemptError extends Error {
  readonly kind: FailureKind;
  readonly retryable: boolean;
  readonly clientError: GatewayError;
  readonly upstreamStatus: number | undefined;
  readonly retryAfter: string | undefined;
  constructor(kind: FailureKind, clientError: GatewayError, options: { retryable: boolean; upstreamStatus?: number; retryAfter?: string }) {
    super(`${kind}: ${clientError.message}`);
    this.name = 'AttemptError';
    this.kind = kind;
    this.clientError = clientError;
    this.retryable = options.retryable;
    this.upstreamStatus = options.upstreamStatus;
    this.retryAfter = options.retryAfter;
  }
}

type TimeoutKind = 'first-byte-timeout' | 'idle-timeout' | 'total-timeout';

/**
 * Deadlines of one attempt: first byte, then idle between chunks, and a total.
 * One timer per attempt, refreshed per chunk rather than re-created; the total
 * is checked on each chunk (a silent stream meets the idle deadline first).
 */
export class AttemptDeadlines {
  fired: TimeoutKind | undefined;
  private timer: NodeJS.Timeout | undefined;
  private receiving = false;
  private readonly idleMs: number;
  private readonly totalAt: number;
  private readonly firstByteIsTotal: boolean;
  private readonly abort: () => void;

  constructor(backend: Backend, controller: AbortController) {
    const { firstByteMs, idleMs, totalMs } = backend.config.timeouts;
    this.idleMs = idleMs;
    this.totalAt = totalMs > 0 ? performance.now() + totalMs : Number.POSITIVE_INFINITY;
    this.abort = () => controller.abort();
    const first = firstByteMs > 0 ? firstByteMs : Number.POSITIVE_INFINITY;
    const total = totalMs > 0 ? totalMs : Number.POSITIVE_INFINITY;
    this.firstByteIsTotal = total < first;
    const wait = Math.min(first, total);
    if (Number.isFinite(wait)) this.timer = setTimeout(() => this.fire(this.firstByteIsTotal ? 'total-timeout' : 'first-byte-timeout'), wait);
  }

  private fire(kind: TimeoutKind): void {
    if (this.fired) return;
    this.fired = kind;
    this.abort();
  }

  /** Call on every body chunk: the first switches to idle timing, later ones refresh it. */
  onData(): void {
    if (this.receiving) {
      if (performance.now() > this.totalAt) this.fire('total-timeout');
      else this.timer?.refresh();
      return;
    }
    this.receiving = true;
    if (this.timer) clearTimeout(this.timer);
    const wait = Math.min(this.idleMs > 0 ? this.idleMs : Number.POSITIVE_INFINITY, this.totalAt - performance.now());
    this.timer = Number.isFinite(wait) ? setTimeout(() => this.fire(performance.now() >= this.totalAt ? 'total-timeout' : 'idle-timeout'), Math.max(0, wait)) : undefined;
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}

/** An attempt whose response headers arrived. */
export interface OpenedAttempt {
  statusCode: number;
  headers: Dispatcher.ResponseData['headers'];
  body: Dispatcher.ResponseData['body'];
  deadlines: AttemptDeadlines;
  controller: AbortController;
  startedAt: number;
}

/** Turns a transport failure into an AttemptError, using what the deadlines and the client say. */
export function classifyFailure(error: unknown, deadlines: AttemptDeadlines, clientSignal: AbortSignal, backend: Backend, receivedAny: boolean): AttemptError {
  if (error instanceof AttemptError) return error;
  if (clientSignal.aborted) {
    return new AttemptError('client-closed', gatewayError('SWY_ERR_INTERNAL', { message: 'client closed the request' }), { retryable: false });
  }
  if (deadlines.fired) {
    const what = deadlines.fired === 'first-byte-timeout' ? 'first byte' : deadlines.fired === 'idle-timeout' ? 'next chunk' : 'complete answer';
    return new AttemptError(
      deadlines.fired,
      gatewayError('SWY_ERR_UPSTREAM_TIMEOUT', { message: `Backend ${backend.id} timed out waiting for the ${what} (${deadlines.fired}). Retry later.` }),
      { retryable: deadlines.fired === 'first-byte-timeout' },
    );
  }
  const code = (error as { code?: string }).code ?? '';
  const connectFailure = !receivedAny && /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|UND_ERR_CONNECT_TIMEOUT/.test(code);
  if (connectFailure) {
    return new AttemptError(
      'connect-error',
      gatewayError('SWY_ERR_UPSTREAM_UNREACHABLE', { message: `Backend ${backend.id} is unreachable (${code}). Retry later.` }),
      { retryable: true },
    );
  }
  if (receivedAny) {
    return new AttemptError(
      'stream-interrupted',
      gatewayError('SWY_ERR_UPSTREAM_STREAM', { message: `Backend ${backend.id} closed the connection mid-answer (${code || (error as Error).message}).` }),
      { retryable: false },
    );
  }
  return new AttemptError(
    'connection-reset',
    gatewayError('SWY_ERR_UPSTREAM_UNREACHABLE', { message: `Backend ${backend.id} dropped the connection before answering (${code || (error as Error).message}). Retry later.` }),
    { retryable: true },
  );
}

/**
 * The client's side of a request. When the client leaves, its signal aborts
 * and so does the attempt in flight — handed over directly, without adding and
 * removing an event listener on every attempt.
 */
export class ClientLink {
  private readonly controller = new AbortController();
  private attempt: AbortController | undefined;

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The client went away: abort everything done on its behalf. */
  leave(): void {
    this.controller.abort();
    this.attempt?.abort();
  }

  /** Makes `attempt` the one a departure aborts (aborting it at once if the client already left). */
  bind(attempt: AbortController): void {
    this.attempt = attempt;
    if (this.controller.signal.aborted) attempt.abort();
  }
}

/** Sends one request upstream; resolves when response headers arrive. */
export async function openAttempt(
  backend: Backend,
  path: string,
  body: string,
  requestId: string,
  client: ClientLink,
  extraHeaders?: Record<string, string>,
  ownConnection = false,
): Promise<OpenedAttempt> {
  const controller = new AbortController();
  client.bind(controller);
  const clientSignal = client.signal;
  const deadlines = new AttemptDeadlines(backend, controller);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-request-id': requestId,
    ...extraHeaders,
  };
  if (backend.authorization) headers.authorization = backend.authorization;
  const startedAt = performance.now();
  try {
    const response = await backend.dispatcher.request({
      origin: backend.origin,
      path: backend.basePath + path,
      method: 'POST',
      headers,
      body,
      signal: controller.signal,
      reset: ownConnection,
    });
    return { statusCode: response.statusCode, headers: response.headers, body: response.body, deadlines, controller, startedAt };
  } catch (error) {
    deadlines.clear();
    throw classifyFailure(error, deadlines, clientSignal, backend, false);
  }
}

/** Ends an opened attempt: clears its timers and drops an unread body. Call exactly once. */
export function closeAttempt(attempt: OpenedAttempt): void {
  attempt.deadlines.clear();
  if (!attempt.body.destroyed) attempt.body.destroy();
}
