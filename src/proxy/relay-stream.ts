/**
 * Relays an upstream SSE stream to the client chunk by chunk, with
 * backpressure. Headers go to the client only with the first event, so a
 * failure before it can still fail over. After that, any failure ends the
 * stream with an OpenAI-shaped error event, never a clean-looking truncation.
 */
import type { ServerResponse } from 'node:http';
import { AttemptError, classifyFailure, type Attempt, type ClientState } from '../backends/attempt.ts';
import type { Backend } from '../backends/registry.ts';
import { gatewayError, renderErrorEvent, type GatewayError } from '../errors.ts';
import { extractUsage, isUsageOnlyChunk, rewriteModel, usageFromTimings } from '../wire/chunk-edit.ts';
import type { Usage } from '../wire/types.ts';
import { dataOf, isErrorPayload, SseSplitter } from '../wire/sse.ts';
import { streamEventFailure } from './upstream-error.ts';

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
  /** JSON-serialised public model name. */
  publicJson: string;
  clientWantsUsage: boolean;
  promptParam: string;
  /** Called once, right before the first byte goes to the client: writes the response head. */
  commit: () => void;
  /** Sees every data payload as the upstream sent it (e.g. to record the answer for the cache). */
  onData?: ((data: string) => void) | undefined;
}

/**
 * Relays the stream. Throws AttemptError only before anything reached the
 * client (so the caller may fail over); afterwards it always resolves.
 */
export async function relayStream(options: StreamRelayOptions): Promise<StreamOutcome> {
  const { backend, attempt, raw, client, publicJson, clientWantsUsage, promptParam } = options;
  const splitter = new SseSplitter();
  const outcome: StreamOutcome = { usage: undefined, firstEventMs: undefined, error: undefined, backendFault: false, clientClosed: false, chunks: 0 };
  let committed = false;
  let sawDone = false;
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
        if (sawDone) break; // keep reading to the end so the connection stays reusable
        const data = dataOf(event);
        if (data !== undefined && isErrorPayload(data)) {
          const failure = streamEventFailure(data, backend.id, promptParam);
          if (!committed) {
            stoppedBy = failure;
            stopped = true;
            attempt.abort();
            return true;
          }
          outcome.error = failure.clientError;
          outcome.backendFault = failure.backendFault;
          out += renderErrorEvent(failure.clientError);
          break;
        }
        if (!committed) {
          options.commit();
          committed = true;
          outcome.firstEventMs = performance.now() - attempt.startedAt;
        }
        if (data !== undefined) options.onData?.(data);
        if (data === undefined) {
          out += `${event}\n\n`; // comments (keep-alive pings) and other fields pass as they are
        } else if (data === '[DONE]') {
          sawDone = true;
          out += 'data: [DONE]\n\n';
        } else {
          const usage = extractUsage(data) ?? (outcome.usage === undefined ? usageFromTimings(data) : undefined);
          if (usage) {
            outcome.usage = usage;
            if (!clientWantsUsage && isUsageOnlyChunk(data)) continue;
          }
          out += `data: ${rewriteModel(data, publicJson)}\n\n`;
          outcome.chunks++;
        }
      }
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
      stoppedBy = error;
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
      outcome.error = gatewayError('SWY_ERR_INTERNAL');
      if (!raw.destroyed) raw.write(renderErrorEvent(outcome.error));
    } else if (!stopped) {
      if (!committed) throw classifyFailure(error, attempt.deadlines, client, backend, false);
      const failure = classifyFailure(error, attempt.deadlines, client, backend, true);
      if (failure.kind === 'client-closed') {
        outcome.clientClosed = true;
        return outcome;
      }
      outcome.error = failure.clientError;
      outcome.backendFault = failure.backendFault;
      if (!raw.destroyed) raw.write(renderErrorEvent(failure.clientError));
    }
  } finally {
    if (draining) raw.off('drain', onDrain);
  }
  if (client.left || raw.destroyed) {
    outcome.clientClosed = !sawDone;
    return outcome;
  }
  // The upstream may end its body cleanly right after the event that stopped the relay: that event decides.
  if (!committed && stoppedBy !== undefined) throw stoppedBy instanceof AttemptError ? stoppedBy : classifyFailure(stoppedBy, attempt.deadlines, client, backend, false);
  if (!committed) {
    throw new AttemptError(
      'stream-interrupted',
      gatewayError('SWY_ERR_UPSTREAM_UNREACHABLE', { message: `Backend ${backend.id} closed the stream before sending anything.` }),
    );
  }
  if (!sawDone && !outcome.error) {
    outcome.error = gatewayError('SWY_ERR_UPSTREAM_STREAM', {
      message: `Backend ${backend.id} ended the stream without [DONE]; the answer is incomplete.`,
    });
    outcome.backendFault = true;
    raw.write(renderErrorEvent(outcome.error));
  }
  raw.end();
  return outcome;
}
