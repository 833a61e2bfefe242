/**
 * What the request path knows of tracing: a few interfaces and the loader.
 * Nothing here imports the OpenTelemetry SDK; otel.ts does, and it is loaded
 * (a dynamic import) only when `tracing.enabled` is true. With tracing off the
 * request path pays one check: `record.trace` is undefined, and every call
 * site is `record.trace?.…` (arguments are not even evaluated).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Target } from '../backends/registry.ts';
import type { RequestRecord } from '../proxy/record.ts';
import type { TracingConfig } from './config.ts';

/** The tracer of one gateway process. */
export interface Tracing {
  /** Starts the request's span, continuing the caller's trace when the request carries a W3C traceparent. */
  start(headers: IncomingHttpHeaders): RequestTrace;
  /** Exports what is buffered and stops (the gateway's shutdown). */
  shutdown(): Promise<void>;
}

/** One request's trace: its span and the child spans the request path opens. Never given prompt or answer text. */
export interface RequestTrace {
  /** A response-cache lookup starts (cacheable requests only). */
  cacheLookup(): CacheLookupTrace;
  /** The request waits in `backendId`'s admission queue (only when no slot was free). */
  queued(backendId: string): SpanEnd;
  /**
   * One upstream attempt starts (`attempt` counts from 1; `reason` is the route reason, `failover:<kind>` after the
   * first; `endpoint` the surface's name, for gen_ai.operation.name).
   */
  attempt(target: Target, attempt: number, reason: string | undefined, endpoint: string | undefined): AttemptTrace;
  /** The request is over: the span takes the record's outcome (model, tokens, status, cache, error) and ends. */
  end(record: RequestRecord, request: FastifyRequest): void;
}

export interface SpanEnd {
  end(): void;
}

export interface CacheLookupTrace {
  /** `hit`, `shared` (a concurrent identical request's answer), `miss`, or `error`. */
  end(result: 'hit' | 'shared' | 'miss' | 'error'): void;
}

export interface AttemptTrace {
  /** W3C trace context headers for the upstream request (`traceparent`, and `tracestate` when the caller sent one). */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * The attempt is over: the backend's HTTP status (0 when none arrived), ms from sending to the first byte of the
   * answer, whether the answer was streamed (then that first byte is the time to first token), and how it failed.
   */
  end(status: number, firstByteMs: number | undefined, streamed: boolean, failure: string | undefined): void;
}

/** Loads the OpenTelemetry SDK and starts exporting (only called with tracing.enabled). */
export async function loadTracing(config: TracingConfig, logger: Logger): Promise<Tracing> {
  const { OtelTracing } = await import('./otel.ts');
  return new OtelTracing(config, logger);
}
