/**
 * Relays an upstream SSE stream to the client chunk by chunk, with
 * backpressure. Headers go to the client only with the first event, so a
 * failure before it can still fail over. After that, any failure ends the
 * stream with an error event in the client's shape, never a clean-looking
 * truncation. What each event becomes is the dialect's business (codec.ts).
 */
import type { ServerResponse } from 'node:http';
import { AttemptError, classifyFailure, type Attempt, type ClientState } from '../backends/attempt.ts';
import type { Backend } from '../backends/registry.ts';
import { gatewayError, type GatewayError } from '../errors.ts';
import type { Usage } from '../wire/types.ts';
import { EventTooLargeError, SseSplitter } from '../wire/sse.ts';
import type { AnswerCapture, StreamDialect } from './codec.ts';

/** How a relayed stream ended. */
export interface StreamOutcome {
  usage: Usage | undefined;
  /** ms since the attempt started when the first event arrived. */
  firstEventMs: number | undefined;
  /** The error event the client got, if the stream did not complete. */
  error: GatewayError | undefined;
  /** That error was the backend's doing (counts against its circuit); see failure.ts. */
  backendFault: boolean;
  clientClosed: boolean;
  /** Data chunks passed to the client. */
  chunks: number;
}

/** What the relay needs to know about the request. */
export interface StreamRelayOptions {
  backend: Backend;
  attempt: Attempt;
  raw: ServerResponse;
  client: ClientState;
  /** What each upstream event becomes for the client. */
  dialect: StreamDialect;
  /** Called once, right before the first byte goes to the client: writes the response head. */
  commit: () => void;
  /** Sees the text sent to the client (e.g. to record the answer for the cache). */
  capture?: AnswerCapture | undefined;
}

/** A stream event (or a line without its end) over backends[].maxEventBytes: the backend's fault. */
export function eventTooLarge(backend: Backend): AttemptError {
  return new AttemptError(
    'answer-too-large',
    gatewayError('SWY_ERR_UPSTREAM_TOO_LARGE', {
      message: `Backend ${backend.id} sent a stream event longer than ${backend.config.maxEventBytes} bytes (backends[].maxEventBytes).`,
    }),
  );
}

/** The backend answered a stream request with one JSON document (its content type says so), not an event stream. */
export function answeredJson(attempt: Attempt): boolean {
  const type = attempt.headers['content-type'];
  return typeof type === 'string' && type.startsWith('application/json');
}

/**
 * Relays the stream. Throws AttemptError only before anything reached the
 * client (so the caller may fail over); afterwards it always resolves.
 */
export async function relayStream(options: StreamRelayOptions): Promise<StreamOutcome> {
  const { backend, attempt, raw, client, dialect } = options;
  // Nothing to relay: fail now (and fail over) rather than wait for an event that never comes.
  if (answeredJson(attempt)) {
    throw new AttemptError('invalid-answer', gatewayError('SWY_ERR_UPSTREAM', { message: `Backend ${backend.id} answered a streaming request with JSON, not an event stream.` }));
  }
  const onOutput = options.capture?.streamText?.bind(options.capture);
  const splitter = new SseSplitter(backend.config.maxEventBytes);
  const outcome: StreamOutcome = { usage: undefined, firstEventMs: undefined, error: undefined, backendFault: false, clientClosed: false, chunks: 0 };
  let committed = false;
  /** Why the relay stopped reading on its own: an error before the first event (fail over) or a bug. */
  let stoppedBy: unknown;
  let stopped = false;
  let draining = false;
  const onDrain = () => {
    draining = false;
    attempt.resume();
  };

  /** One chunk of upstream text: relayed event by event; false pauses the upstream until the client drains. */
  const onText = (chunk: string): boolean => {
    if (stopped) return true;
    try {
      let out = '';
      for (const event of splitter.push(chunk)) {
        if (dialect.done) break; // keep reading to the end so the connection stays reusable
        const step = dialect.read(event);
        if (typeof step !== 'string') {
          if (!committed) {
            stoppedBy = step;
            stopped = true;
            attempt.abort();
            return true;
          }
          outcome.error = step.clientError;
          outcome.backendFault = step.backendFault;
          out += dialect.fail(step.clientError);
          break;
        }
        if (!committed) {
          options.commit();
          committed = true;
          outcome.firstEventMs = performance.now() - attempt.startedAt;
        }
        out += step;
      }
      if (onOutput !== undefined && out.length > 0) onOutput(out);
      const flowing = out.length === 0 || raw.write(out);
      if (outcome.error) {
        stopped = true;
        attempt.abort();
        return true;
      }
      if (flowing) return true;
      if (!draining) {
        draining = true;
        raw.once('drain', onDrain);
      }
      return false;
    } catch (error) {
      stoppedBy = error instanceof EventTooLargeError ? eventTooLarge(backend) : error;
      stopped = true;
      attempt.abort();
      return true;
    }
  };

  try {
    await attempt.read(onText);
  } catch (error) {
    if (stoppedBy !== undefined) {
      if (!committed) throw stoppedBy instanceof AttemptError ? stoppedBy : classifyFailure(stoppedBy, attempt.deadlines, client, backend, false);
      // The upstream's fault (an oversized event) is told as such; anything else stopping the relay is a bug.
      outcome.error = stoppedBy instanceof AttemptError ? stoppedBy.clientError : gatewayError('SWY_ERR_INTERNAL');
      outcome.backendFault = stoppedBy instanceof AttemptError && stoppedBy.backendFault;
      if (!raw.destroyed) raw.write(dialect.fail(outcome.error));
    } else if (!stopped) {
      if (!committed) throw classifyFailure(error, attempt.deadlines, client, backend, false);
      const failure = classifyFailure(error, attempt.deadlines, client, backend, true);
      if (failure.kind === 'client-closed') {
        outcome.clientClosed = true;
        return outcome;
      }
      if (failure.kind === 'client-stalled') {
        // A client that reads nothing would not read an error event either: cut it, and free what it held.
        outcome.error = failure.clientError;
        outcome.clientClosed = true;
        raw.destroy();
        return outcome;
      }
      outcome.error = failure.clientError;
      outcome.backendFault = failure.backendFault;
      if (!raw.destroyed) raw.write(dialect.fail(failure.clientError));
    }
  } finally {
    if (draining) raw.off('drain', onDrain);
    outcome.usage = dialect.usage;
    outcome.chunks = dialect.chunks;
  }
  if (client.left || raw.destroyed) {
    outcome.clientClosed = !dialect.done;
    return outcome;
  }
  // The upstream may end its body cleanly right after the event that stopped the relay: that event decides.
  if (!committed && stoppedBy !== undefined) throw stoppedBy instanceof AttemptError ? stoppedBy : classifyFailure(stoppedBy, attempt.deadlines, client, backend, false);
  if (!committed) {
    throw new AttemptError('stream-interrupted', gatewayError('SWY_ERR_UPSTREAM_UNREACHABLE', { message: `Backend ${backend.id} closed the stream before sending anything.` }));
  }
  if (!dialect.done && !outcome.error) {
    outcome.error = gatewayError('SWY_ERR_UPSTREAM_STREAM', {
      message: `Backend ${backend.id} ended the stream before its end event; the answer is incomplete.`,
    });
    outcome.backendFault = true;
    raw.write(dialect.fail(outcome.error));
  }
  raw.end();
  return outcome;
}
