/**
 * Non-streaming answers streamed from the runtime (backends[].streamUpstream):
 * the OpenAI chunks assembled into the JSON answer the runtime would have
 * sent; the call's codec then turns it into the client's answer.
 */
import { AttemptError, classifyFailure, type Attempt, type ClientState } from '../backends/attempt.ts';
import type { Backend } from '../backends/registry.ts';
import { gatewayError } from '../errors.ts';
import { StreamAssembler } from '../wire/assemble.ts';
import { dataOf, EventTooLargeError, isErrorPayload, SseSplitter } from '../wire/sse.ts';
import { answeredJson, eventTooLarge } from './relay-stream.ts';
import { streamEventFailure } from './upstream-error.ts';

/** Reads an upstream stream to the end and assembles the non-streaming answer (its JSON text). */
export async function assembleStreamAnswer(
  attempt: Attempt,
  client: ClientState,
  backend: Backend,
  kind: 'chat' | 'completion',
  publicModel: string,
  promptParam: string,
): Promise<string> {
  // A backend that ignores `stream` sent the JSON answer itself: take it as it is (held whole, so bounded).
  if (answeredJson(attempt)) return attempt.text();
  const assembler = new StreamAssembler(kind, publicModel);
  const splitter = new SseSplitter(backend.config.maxEventBytes);
  let sawDone = false;
  let failure: AttemptError | undefined;
  try {
    await attempt.read((chunk) => {
      if (failure) return true;
      let events: string[];
      try {
        events = splitter.push(chunk);
      } catch (error) {
        if (!(error instanceof EventTooLargeError)) throw error;
        failure = eventTooLarge(backend);
        attempt.abort();
        return true;
      }
      for (const event of events) {
        const data = dataOf(event);
        if (data === undefined || sawDone) continue;
        if (data === '[DONE]') {
          sawDone = true;
          continue;
        }
        if (isErrorPayload(data)) {
          failure = streamEventFailure(data, backend.id, promptParam);
          attempt.abort();
          return true;
        }
        try {
          assembler.add(data);
        } catch {
          failure = new AttemptError('invalid-answer', gatewayError('SWY_ERR_UPSTREAM', { message: `Backend ${backend.id} sent a stream event that is not JSON.` }));
          attempt.abort();
          return true;
        }
      }
      return true;
    }, true);
  } catch (error) {
    throw failure ?? classifyFailure(error, attempt.deadlines, client, backend, false);
  }
  if (failure) throw failure;
  if (!sawDone) {
    throw new AttemptError('stream-interrupted', gatewayError('SWY_ERR_UPSTREAM_STREAM', { message: `Backend ${backend.id} ended its answer early.` }));
  }
  return assembler.result();
}
