/**
 * What one request did, filled in along the hot path and reported once at
 * the end (one log line, the metrics). Holds no prompt or completion text.
 */
import type { ErrorName, ErrorOrigin, GatewayError } from '../errors.ts';
import type { RequestTrace } from '../tracing/trace.ts';
import type { Usage } from '../wire/types.ts';

/** The per-request record: one log line and the metrics come from it. */
export interface RequestRecord {
  requestId: string;
  /** The API surface the request came in on (its name: `chat`, `completion`, ...), once a surface route matched. */
  endpoint: string | undefined;
  /** Public model name (from config) or undefined when it was not resolved. */
  model: string | undefined;
  backend: string | undefined;
  stream: boolean;
  status: number;
  /** performance.now() when the request arrived. */
  startedAt: number;
  /** ms spent waiting on upstreams (all attempts). */
  upstreamMs: number;
  /** ms from arrival to the first byte of the answer from the backend. */
  firstByteMs: number | undefined;
  /** The answer came from the backend as a stream (so firstByteMs is a real time to first token). */
  streamedUpstream: boolean;
  attempts: number;
  failures: string[];
  usage: Usage | undefined;
  /** The error the client got (its code, catalogue name and origin), if any. */
  errorCode: string | undefined;
  /** The guard's verdicts (`category:action`), when it found anything. */
  guard: string[] | undefined;
  /** guard.restore: placeholders written into this request and their values (memory only, never logged). */
  restore: ReadonlyMap<string, string> | undefined;
  errorName: ErrorName | undefined;
  errorOrigin: ErrorOrigin | undefined;
  clientClosed: boolean;
  routeReason: string | undefined;
  /** Response cache result (`bypass` when the request was not cacheable). */
  cache: 'hit' | 'miss' | 'bypass';
  /** API key id and tenant, when auth identified them. */
  keyId: string | undefined;
  tenant: string | undefined;
  /** Cost of the request under the backend's cost model (0 for cache hits). */
  cost: number;
  /** Data chunks relayed to a streaming client (about one token each): charges a stream cut short. */
  streamedChunks: number;
  /** The answer was written past Fastify (raw-reply.ts): the pipeline reports the request, onResponse does not. */
  rawAnswer: boolean;
  /** The request's trace when tracing is on (undefined otherwise: every use is `record.trace?.…`). */
  trace: RequestTrace | undefined;
}

export function newRecord(requestId: string, startedAt: number): RequestRecord {
  return {
    requestId,
    endpoint: undefined,
    model: undefined,
    backend: undefined,
    stream: false,
    status: 0,
    startedAt,
    upstreamMs: 0,
    firstByteMs: undefined,
    streamedUpstream: false,
    attempts: 0,
    failures: [],
    usage: undefined,
    errorCode: undefined,
    guard: undefined,
    restore: undefined,
    errorName: undefined,
    errorOrigin: undefined,
    clientClosed: false,
    routeReason: undefined,
    cache: 'bypass',
    keyId: undefined,
    tenant: undefined,
    cost: 0,
    streamedChunks: 0,
    rawAnswer: false,
    trace: undefined,
  };
}

/** Notes the error the client got, by identity: logs and metrics key on its name and origin. */
export function noteError(record: RequestRecord, error: GatewayError): void {
  record.errorCode = error.code;
  record.errorName = error.errorName;
  record.errorOrigin = error.origin;
}
