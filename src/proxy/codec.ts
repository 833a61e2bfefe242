/**
 * How one upstream call's answer becomes the client's: the contract between
 * the attempt loop and relays (which own transport, deadlines, backpressure,
 * commit and failover) and the surface (which knows the wire shapes). The
 * OpenAI surfaces relay with cheap edits (model name in, usage out); a
 * translated surface parses and re-writes; a native non-OpenAI surface edits
 * its own event format.
 */
import type { AttemptError } from '../backends/failure.ts';
import type { GatewayError } from '../errors.ts';
import type { Usage } from '../wire/types.ts';

/** A complete answer for the client. */
export interface ClientAnswer {
  body: string;
  usage: Usage | undefined;
}

/** Reads one upstream call's answers. */
export interface AnswerCodec {
  /**
   * The upstream's JSON answer (or the one assembled from its stream) as the client's JSON answer.
   * Throws an AttemptError (`invalid-answer`) when it cannot be read.
   */
  json(text: string): ClientAnswer;
  /** A dialect for one relayed stream. */
  stream(): StreamDialect;
}

/** Relays one upstream SSE stream event by event. */
export interface StreamDialect {
  /**
   * One upstream event (its text without the blank line): the text to send the client ('' sends nothing),
   * or the failure the event reports (an error event).
   */
  read(event: string): string | AttemptError;
  /** The upstream ended the stream the way its protocol says a complete answer ends. */
  readonly done: boolean;
  /** Text ending a stream that failed after it began, in the client's shape. */
  fail(error: GatewayError): string;
  /** Usage seen so far. */
  readonly usage: Usage | undefined;
  /** Content events relayed (about one token each): charges a stream cut short. */
  readonly chunks: number;
}

/** Sees the answer on its way to the client (the response cache stores it). */
export interface AnswerCapture {
  /** A complete non-streaming answer, as sent to the client. */
  json?(body: string, usage: Usage | undefined): void;
  /** Every data payload of a relayed OpenAI stream, as the upstream sent it. */
  streamData?(data: string): void;
  /** The text of a stream as it is sent to the client. */
  streamText?(text: string): void;
}
