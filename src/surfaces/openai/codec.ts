/**
 * The identity codec: answers in the OpenAI conventions relayed with the
 * cheap edits only (the public model name in, usage out), never parsed. The
 * chat fast path runs through here, so it allocates one object per call and
 * one per stream, and nothing per chunk beyond the edited text.
 */
import { AttemptError } from '../../backends/failure.ts';
import { gatewayError, renderErrorEvent, type GatewayError } from '../../errors.ts';
import type { AnswerCapture, AnswerCodec, ClientAnswer, StreamDialect } from '../../proxy/codec.ts';
import { streamEventFailure } from '../../proxy/upstream-error.ts';
import { extractUsage, isUsageOnlyChunk, rewriteModel, usageFromTimings } from '../../wire/chunk-edit.ts';
import { dataOf, isErrorPayload } from '../../wire/sse.ts';
import type { Usage } from '../../wire/types.ts';

/** What the identity codec needs to know about the call. */
export interface IdentityCodecOptions {
  backendId: string;
  /** JSON-serialised public model name. */
  publicJson: string;
  promptParam: string;
  /** The client asked for the usage chunk (else it is dropped: the gateway asked for it itself). */
  clientWantsUsage: boolean;
  capture: AnswerCapture | undefined;
}

/** A whole JSON answer checked to be an object (the edits below trust it is JSON). */
export function requireJsonObject(text: string, backendId: string): void {
  if (!text.startsWith('{')) {
    throw new AttemptError('invalid-answer', gatewayError('SWY_ERR_UPSTREAM', { message: `Backend ${backendId} sent a body that is not JSON.` }));
  }
}

class IdentityDialect implements StreamDialect {
  done = false;
  usage: Usage | undefined;
  chunks = 0;
  private readonly options: IdentityCodecOptions;

  constructor(options: IdentityCodecOptions) {
    this.options = options;
  }

  read(event: string): string | AttemptError {
    const data = dataOf(event);
    if (data === undefined) return `${event}\n\n`; // comments (keep-alive pings) and other fields pass as they are
    const options = this.options;
    if (isErrorPayload(data)) return streamEventFailure(data, options.backendId, options.promptParam);
    options.capture?.streamData?.(data);
    if (data === '[DONE]') {
      this.done = true;
      return 'data: [DONE]\n\n';
    }
    const usage = extractUsage(data) ?? (this.usage === undefined ? usageFromTimings(data) : undefined);
    if (usage) {
      this.usage = usage;
      if (!options.clientWantsUsage && isUsageOnlyChunk(data)) return '';
    }
    this.chunks++;
    return `data: ${rewriteModel(data, options.publicJson)}\n\n`;
  }

  fail(error: GatewayError): string {
    return renderErrorEvent(error);
  }
}

/** Codec of an OpenAI-convention answer relayed as it is. */
export class IdentityCodec implements AnswerCodec {
  private readonly options: IdentityCodecOptions;

  constructor(options: IdentityCodecOptions) {
    this.options = options;
  }

  json(text: string): ClientAnswer {
    requireJsonObject(text, this.options.backendId);
    return { body: rewriteModel(text, this.options.publicJson), usage: extractUsage(text) };
  }

  stream(): StreamDialect {
    return new IdentityDialect(this.options);
  }
}
