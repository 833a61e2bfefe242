/**
 * Non-streaming answers: read the upstream JSON (or assemble it from an
 * upstream stream), put the public model name in, read usage out.
 */
import { AttemptError, classifyFailure, type Attempt, type ClientState } from '../backends/attempt.ts';
import type { Backend } from '../backends/registry.ts';
import { gatewayError } from '../errors.ts';
import { StreamAssembler } from '../wire/assemble.ts';
import { extractUsage, rewriteModel } from '../wire/chunk-edit.ts';
import type { Usage } from '../wire/types.ts';
import { dataOf, isErrorPayload, SseSplitter } from '../wire/sse.ts';
import { streamEventFailure } from './upstream-error.ts';

/** A complete answer ready to send. */
export interface JsonAnswer {
  body: string;
  usage: Usage | undefined;
  firstByteMs: number | undefined;
}

/** A whole JSON answer from the upstream, relayed with the public model name. */
export function jsonAnswer(text: string, backend: Backend, publicJson: string, firstByteMs: number | undefined): JsonAnswer {
  if (!text.startsWith('{')) {
    throw new AttemptError('invalid-answer', gatewayError('SWY_ERR_UPSTREAM', { message: `Backend ${backend.id} sent a body that is not JSON.` }));
  }
  return { body: rewriteModel(text, publicJson), usage: extractUsage(text), firstByteMs };
}

/** Reads an upstream stream to the end and assembles the non-streaming answer. */
export async function assembleStreamAnswer(
  attempt: Attempt,
  client: ClientState,
  backend: Backend,
  kind: 'chat' | 'completion',
  publicModel: string,
  promptParam: string,
): Promise<JsonAnswer> {
  const assembler = new StreamAssembler(kind, publicModel);
  const splitter = new SseSplitter();
  let sawDone = false;
  let failure: AttemptError | undefined;
  try {
    await attempt.read((chunk) => {
      if (failure) return true;
      for (const event of splitter.push(chunk)) {
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
    });
  } catch (error) {
    throw failure ?? classifyFailure(error, attempt.deadlines, client, backend, false);
  }
  if (failure) throw failure;
  if (!sawDone) {
    throw new AttemptError('stream-interrupted', gatewayError('SWY_ERR_UPSTREAM_STREAM', { message: `Backend ${backend.id} ended its answer early.` }));
  }
  const body = assembler.result();
  return { body, usage: extractUsage(body), firstByteMs: attempt.firstDataMs };
}
