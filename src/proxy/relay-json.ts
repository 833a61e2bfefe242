/**
 * Non-streaming answers: read the upstream JSON (or assemble it from an
 * upstream stream), put the public model name in, read usage out.
 */
import { AttemptError, classifyFailure, type OpenedAttempt } from '../backends/attempt.ts';
import type { Backend } from '../backends/registry.ts';
import { gatewayError } from '../errors.ts';
import { StreamAssembler } from './assemble.ts';
import { extractUsage, rewriteModel, type Usage } from './chunk-edit.ts';
import { dataOf, isErrorPayload, SseSplitter } from './sse.ts';
import { normaliseStreamErrorEvent } from './upstream-error.ts';

/** A complete answer ready to send. */
export interface JsonAnswer {
  body: string;
  usage: Usage | undefined;
  firstByteMs: number | undefined;
}

/**
 * Reads an upstream body to a string, with the attempt's deadlines. Event
 * listeners rather than an async iterator: one promise per body, not per chunk.
 */
export function readBody(attempt: OpenedAttempt, clientSignal: AbortSignal, backend: Backend, onFirst?: () => void): Promise<string> {
  const body = attempt.body;
  body.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let text = '';
    body.on('data', (chunk: string) => {
      if (text.length === 0) onFirst?.();
      attempt.deadlines.onData();
      text += chunk;
    });
    body.once('end', () => resolve(text));
    body.once('error', (error) => reject(classifyFailure(error, attempt.deadlines, clientSignal, backend, false)));
    body.once('close', () => {
      if (!body.readableEnded) reject(classifyFailure(new Error('upstream body closed early'), attempt.deadlines, clientSignal, backend, false));
    });
  });
}

/** Relays a JSON answer with the public model name. */
export async function readJsonAnswer(attempt: OpenedAttempt, clientSignal: AbortSignal, backend: Backend, publicJson: string): Promise<JsonAnswer> {
  let firstByteMs: number | undefined;
  const text = await readBody(attempt, clientSignal, backend, () => {
    firstByteMs = performance.now() - attempt.startedAt;
  });
  if (!text.startsWith('{')) {
    throw new AttemptError('upstream-status', gatewayError('SWY_ERR_UPSTREAM', { message: `Backend ${backend.id} sent a body that is not JSON.` }), {
      retryable: true,
    });
  }
  return { body: rewriteModel(text, publicJson), usage: extractUsage(text), firstByteMs };
}

/** Reads an upstream stream to the end and assembles the non-streaming answer. */
export async function assembleStreamAnswer(
  attempt: OpenedAttempt,
  clientSignal: AbortSignal,
  backend: Backend,
  kind: 'chat' | 'completion',
  publicModel: string,
  promptParam: string,
): Promise<JsonAnswer> {
  const assembler = new StreamAssembler(kind, publicModel);
  const splitter = new SseSplitter();
  let firstByteMs: number | undefined;
  let sawDone = false;
  attempt.body.setEncoding('utf8');
  try {
    for await (const chunk of attempt.body as AsyncIterable<string>) {
      firstByteMs ??= performance.now() - attempt.startedAt;
      attempt.deadlines.onData();
      for (const event of splitter.push(chunk)) {
        const data = dataOf(event);
        if (data === undefined || sawDone) continue;
        if (data === '[DONE]') {
          sawDone = true;
          continue;
        }
        if (isErrorPayload(data)) {
          const error = normaliseStreamErrorEvent(data, backend.id, promptParam);
          throw new AttemptError('upstream-status', error, { retryable: error.status >= 500 || error.status === 429 });
        }
        assembler.add(data);
      }
    }
  } catch (error) {
    throw classifyFailure(error, attempt.deadlines, clientSignal, backend, false);
  }
  if (!sawDone) {
    throw new AttemptError('stream-interrupted', gatewayError('SWY_ERR_UPSTREAM_STREAM', { message: `Backend ${backend.id} ended its answer early.` }), {
      retryable: true,
    });
  }
  const body = assembler.result();
  return { body, usage: extractUsage(body), firstByteMs };
}
