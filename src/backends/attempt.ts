/**
 * Exactly one upstream attempt: send the body to a backend over its pool and
 * hand back the response with its deadlines armed. It reports how it failed
 * (an AttemptError with its verdict) and never decides where to go next.
 * Its deadlines are in deadlines.ts and the client's side in client-link.ts;
 * both are re-exported here, where the proxy imports them.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import type { Dispatcher } from 'undici';
import { gatewayError } from '../errors.ts';
import type { Abortable, ClientLink, ClientState } from './client-link.ts';
import { AttemptDeadlines } from './deadlines.ts';
import { AttemptError } from './failure.ts';
import type { Backend } from './registry.ts';

export { type Abortable, ClientLink, type ClientState } from './client-link.ts';
export { AttemptDeadlines } from './deadlines.ts';
export { AttemptError, judgeFailure, type FailureKind, type FailureVerdict } from './failure.ts';

/** Turns a transport failure into an AttemptError, using what the deadlines and the client say. */
export function classifyFailure(error: unknown, deadlines: AttemptDeadlines, client: ClientState, backend: Backend, receivedAny: boolean): AttemptError {
  if (error instanceof AttemptError) return error;
  if (client.left) {
    return new AttemptError('client-closed', gatewayError('SWY_ERR_INTERNAL', { message: 'client closed the request' }));
  }
  if (client.stoppedWith) return new AttemptError('gateway-stopped', client.stoppedWith);
  if (deadlines.fired === 'client-stalled') {
    return new AttemptError('client-stalled', gatewayError('SWY_ERR_CLIENT_STALLED'));
  }
  if (deadlines.fired) {
    const what = deadlines.fired === 'first-byte-timeout' ? 'first byte' : deadlines.fired === 'idle-timeout' ? 'next chunk' : 'complete answer';
    return new AttemptError(
      deadlines.fired,
      gatewayError('SWY_ERR_UPSTREAM_TIMEOUT', { message: `Backend ${backend.id} timed out waiting for the ${what} (${deadlines.fired}). Retry later.` }),
    );
  }
  const code = (error as { code?: string }).code ?? '';
  const connectFailure = !receivedAny && /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|UND_ERR_CONNECT_TIMEOUT/.test(code);
  if (connectFailure) {
    return new AttemptError('connect-error', gatewayError('SWY_ERR_UPSTREAM_UNREACHABLE', { message: `Backend ${backend.id} is unreachable (${code}). Retry later.` }));
  }
  if (receivedAny) {
    return new AttemptError(
      'stream-interrupted',
      gatewayError('SWY_ERR_UPSTREAM_STREAM', { message: `Backend ${backend.id} closed the connection mid-answer (${code || (error as Error).message}).` }),
    );
  }
  return new AttemptError(
    'connection-reset',
    gatewayError('SWY_ERR_UPSTREAM_UNREACHABLE', { message: `Backend ${backend.id} dropped the connection before answering (${code || (error as Error).message}). Retry later.` }),
  );
}

const aborted = (): Error => Object.assign(new Error('attempt aborted'), { code: 'UND_ERR_ABORTED' });

/**
 * One request to a backend, driven through undici's dispatch handler
 * interface: the answer arrives as callbacks, without a response stream
 * object, an AbortSignal or an async resource per request. The body is either
 * collected whole (`text`) or handed over chunk by chunk with backpressure
 * (`read`). `head` and `text` reject with a classified AttemptError; `read`
 * rejects with the transport's error, since only the reader knows whether
 * anything reached the client (see classifyFailure).
 */
export class Attempt implements Dispatcher.DispatchHandler, Abortable {
  statusCode = 0;
  headers: IncomingHttpHeaders = {};
  /** performance.now() when the request was handed to the dispatcher. */
  readonly startedAt: number;
  /** ms after startedAt when the first body byte arrived. */
  firstDataMs: number | undefined;
  readonly deadlines: AttemptDeadlines;
  private controller: Dispatcher.DispatchController | null = null;
  private pendingAbort = false;
  private ended = false;
  private failure: Error | undefined;
  /** Body chunks that arrived before a reader asked for them (or all of them, for `text`). */
  private chunks: Buffer[] = [];
  private reader: ((text: string) => boolean) | undefined;
  private decoder: StringDecoder | undefined;
  /** Body bytes received while the answer is held whole (`text`, or `read` for an answer assembled whole). */
  private held = 0;
  /** `backends[].maxAnswerBytes` while the answer is held whole; infinite for a stream relayed as it arrives. */
  private maxHeld: number;
  private waiter: { stage: 'head' | 'end'; resolve: () => void; reject: (error: Error) => void } | undefined;
  private readonly backend: Backend;
  private readonly client: ClientState;

  constructor(backend: Backend, client: ClientState) {
    this.backend = backend;
    this.client = client;
    this.deadlines = new AttemptDeadlines(backend, () => this.abort());
    this.startedAt = performance.now();
    this.maxHeld = backend.config.maxAnswerBytes > 0 ? backend.config.maxAnswerBytes : Number.POSITIVE_INFINITY;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.pendingAbort) controller.abort(aborted());
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return; // 1xx: informational, the real head follows
    this.statusCode = statusCode;
    this.headers = headers;
    const declared = headers['content-length'];
    if (declared !== undefined && Number(declared) > this.maxHeld) this.tooLarge(controller);
    else if (this.waiter?.stage === 'head') this.settle();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.firstDataMs === undefined) this.firstDataMs = performance.now() - this.startedAt;
    this.deadlines.onData();
    if (this.maxHeld !== Number.POSITIVE_INFINITY) {
      this.held += chunk.length;
      if (this.held > this.maxHeld) {
        this.tooLarge(controller);
        return;
      }
    }
    const reader = this.reader;
    if (reader === undefined) this.chunks.push(chunk);
    else if (!reader((this.decoder as StringDecoder).write(chunk))) this.pause(controller);
  }

  onResponseEnd(): void {
    this.ended = true;
    this.deadlines.clear();
    if (this.reader !== undefined) {
      const rest = (this.decoder as StringDecoder).end();
      if (rest.length > 0) this.reader(rest);
    }
    this.settle();
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, error: Error): void {
    if (this.ended || this.failure) return;
    this.failure = error;
    this.deadlines.clear();
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(error);
  }

  /** The answer outgrew backends[].maxAnswerBytes: a backend fault; drop what was held and stop reading. */
  private tooLarge(controller: Dispatcher.DispatchController): void {
    const limit = this.backend.config.maxAnswerBytes;
    this.onResponseError(
      controller,
      new AttemptError(
        'answer-too-large',
        gatewayError('SWY_ERR_UPSTREAM_TOO_LARGE', { message: `Backend ${this.backend.id} sent an answer larger than ${limit} bytes (backends[].maxAnswerBytes).` }),
      ),
    );
    this.chunks = [];
    controller.abort(aborted());
  }

  private settle(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.resolve();
  }

  private classify(error: unknown): AttemptError {
    return classifyFailure(error, this.deadlines, this.client, this.backend, false);
  }

  private wait(stage: 'head' | 'end', classify: boolean): Promise<void> {
    if (this.failure) return Promise.reject(classify ? this.classify(this.failure) : this.failure);
    if (this.ended || (stage === 'head' && this.statusCode !== 0)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiter = { stage, resolve, reject: classify ? (error) => reject(this.classify(error)) : reject };
    });
  }

  /** Resolves when the response head arrived. */
  head(): Promise<void> {
    return this.wait('head', true);
  }

  /** The whole body as UTF-8 text: one promise for the whole exchange (the head comes with it). */
  text(): Promise<string> {
    if (this.failure) return Promise.reject(this.classify(this.failure));
    if (this.ended) return Promise.resolve(this.takeText());
    return new Promise((resolve, reject) => {
      this.waiter = { stage: 'end', resolve: () => resolve(this.takeText()), reject: (error) => reject(this.classify(error)) };
    });
  }

  private takeText(): string {
    const chunks = this.chunks;
    this.chunks = [];
    if (chunks.length === 1) return (chunks[0] as Buffer).toString('utf8');
    return Buffer.concat(chunks).toString('utf8');
  }

  /**
   * Hands the body to `onText` as it arrives (UTF-8 text, never split inside a
   * character); when it returns false the upstream pauses until `resume()`.
   * Resolves at the end of the body. `whole`: the reader keeps the whole
   * answer (it is assembled), so backends[].maxAnswerBytes bounds it.
   */
  read(onText: (text: string) => boolean, whole = false): Promise<void> {
    // Relayed as it arrives, a stream holds only its current event (bounded by the relay); assembled, all of it.
    if (!whole) this.maxHeld = Number.POSITIVE_INFINITY;
    this.decoder = new StringDecoder('utf8');
    const early = this.chunks;
    this.chunks = [];
    for (const chunk of early) if (!onText(this.decoder.write(chunk)) && this.controller) this.pause(this.controller);
    this.reader = onText;
    if (this.ended) {
      const rest = this.decoder.end();
      if (rest.length > 0) onText(rest);
    }
    return this.wait('end', false);
  }

  private pause(controller: Dispatcher.DispatchController): void {
    this.deadlines.pause();
    controller.pause();
  }

  resume(): void {
    this.deadlines.resume();
    this.controller?.resume();
  }

  /** Stops the exchange (the connection is dropped unless the answer was complete). */
  abort(): void {
    if (this.ended || this.failure) return;
    if (this.controller) this.controller.abort(aborted());
    else this.pendingAbort = true;
  }

  /** Ends the attempt: clears its timers and drops an unread body. Call exactly once. */
  close(): void {
    this.deadlines.clear();
    this.reader = undefined;
    this.abort();
  }
}

/** Sends one request upstream and returns at once; the answer comes through the Attempt. */
export function startAttempt(
  backend: Backend,
  path: string,
  body: string,
  requestId: string,
  client: ClientLink,
  extraHeaders?: Record<string, string>,
  ownConnection = false,
  traceHeaders?: Readonly<Record<string, string>>,
): Attempt {
  const attempt = new Attempt(backend, client);
  client.bind(attempt);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-request-id': requestId,
    ...extraHeaders,
  };
  if (backend.authorization) headers.authorization = backend.authorization;
  // W3C trace context (traceparent, tracestate) when tracing is on, so the backend's own spans join the trace.
  if (traceHeaders !== undefined) Object.assign(headers, traceHeaders);
  backend.dispatcher.dispatch({ origin: backend.origin, path: backend.basePath + path, method: 'POST', headers, body, reset: ownConnection }, attempt);
  return attempt;
}
