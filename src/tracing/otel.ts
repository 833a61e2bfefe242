/**
 * OpenTelemetry tracing (loaded by trace.ts only when `tracing.enabled`).
 *
 * One SERVER span per request, named `<operation> <model>` with the GenAI
 * semantic conventions (gen_ai.operation.name, gen_ai.request.model,
 * gen_ai.response.model, gen_ai.usage.input_tokens / output_tokens), and child
 * spans for the response-cache lookup, the wait in a backend's admission
 * queue and each upstream attempt (a CLIENT span whose context goes to the
 * backend as `traceparent`, so a runtime that traces, vLLM say, joins the
 * trace). A client's own `traceparent` is continued. Spans are built from
 * counters and names the request path already has: never prompt or answer
 * text, and nothing per streamed chunk.
 *
 * Contexts are passed explicitly (no context manager, no AsyncLocalStorage),
 * and nothing is registered globally: the provider belongs to this gateway.
 */
import type { IncomingHttpHeaders } from 'node:http';
import {
  type Attributes,
  type Context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
} from '@opentelemetry/api';
import { setGlobalErrorHandler, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_SERVICE_NAME,
} from '@opentelemetry/semantic-conventions';
import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Backend, Target } from '../backends/registry.ts';
import type { RequestRecord } from '../proxy/record.ts';
import type { TracingConfig } from './config.ts';
import type { AttemptTrace, CacheLookupTrace, RequestTrace, SpanEnd, Tracing } from './trace.ts';

// The GenAI attributes are still "development" in the semantic conventions (the package keeps them in its
// `incubating` entry, which it advises copying from rather than importing).
const GEN_AI_OPERATION_NAME = 'gen_ai.operation.name';
const GEN_AI_REQUEST_MODEL = 'gen_ai.request.model';
const GEN_AI_RESPONSE_MODEL = 'gen_ai.response.model';
const GEN_AI_USAGE_INPUT_TOKENS = 'gen_ai.usage.input_tokens';
const GEN_AI_USAGE_OUTPUT_TOKENS = 'gen_ai.usage.output_tokens';

/** gen_ai.operation.name by surface (the well-known values where one fits, the surface's own name otherwise). */
const operations: Readonly<Record<string, string>> = {
  chat: 'chat',
  completion: 'text_completion',
  embedding: 'embeddings',
  responses: 'chat',
  messages: 'chat',
  count_tokens: 'count_tokens',
  rerank: 'rerank',
};

function operationOf(endpoint: string | undefined): string | undefined {
  return endpoint === undefined ? undefined : (operations[endpoint] ?? endpoint);
}

/** The backend's host and port as server.address / server.port (parsed once per backend). */
const addresses = new WeakMap<Backend, { address: string; port: number }>();
function addressOf(backend: Backend): { address: string; port: number } {
  let known = addresses.get(backend);
  if (known === undefined) {
    const url = new URL(backend.origin);
    known = { address: url.hostname.replace(/^\[|\]$/g, ''), port: url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port) };
    addresses.set(backend, known);
  }
  return known;
}

/** Says when exports fail: once at once, then at most once a minute (a collector that is down must not flood the log). */
function exportErrorLogger(logger: Logger): (error: unknown) => void {
  let lastAt = Number.NEGATIVE_INFINITY;
  let dropped = 0;
  return (error) => {
    const now = Date.now();
    if (now - lastAt < 60_000) {
      dropped++;
      return;
    }
    lastAt = now;
    logger.warn({ err: error instanceof Error ? error.message : String(error), since: dropped }, 'tracing: exporting spans failed');
    dropped = 0;
  };
}

export class OtelTracing implements Tracing {
  private readonly provider: BasicTracerProvider;
  private readonly tracer: Tracer;
  private readonly propagator = new W3CTraceContextPropagator();

  constructor(config: TracingConfig, logger: Logger) {
    setGlobalErrorHandler(exportErrorLogger(logger));
    const exporter = new OTLPTraceExporter({ url: config.endpoint, headers: config.headers, timeoutMillis: config.exportTimeoutMs });
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) }),
      spanProcessors: [new BatchSpanProcessor(exporter, { maxQueueSize: config.maxQueueSize, exportTimeoutMillis: config.exportTimeoutMs })],
    });
    this.tracer = this.provider.getTracer('switchyard');
  }

  start(headers: IncomingHttpHeaders): RequestTrace {
    const parent = headers.traceparent === undefined ? ROOT_CONTEXT : this.propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
    return new OtelRequestTrace(this.tracer, this.propagator, parent);
  }

  async shutdown(): Promise<void> {
    await this.provider.shutdown();
  }
}

class OtelRequestTrace implements RequestTrace {
  private readonly span: Span;
  private readonly context: Context;
  /** The model the last attempt asked its backend for: gen_ai.response.model when it answered. */
  private responseModel: string | undefined;
  private readonly tracer: Tracer;
  private readonly propagator: W3CTraceContextPropagator;

  constructor(tracer: Tracer, propagator: W3CTraceContextPropagator, parent: Context) {
    this.tracer = tracer;
    this.propagator = propagator;
    this.span = tracer.startSpan('switchyard.request', { kind: SpanKind.SERVER }, parent);
    this.context = trace.setSpan(parent, this.span);
  }

  cacheLookup(): CacheLookupTrace {
    const span = this.tracer.startSpan('switchyard.cache', { kind: SpanKind.INTERNAL }, this.context);
    return {
      end(result) {
        span.setAttribute('switchyard.cache.result', result);
        span.end();
      },
    };
  }

  queued(backendId: string): SpanEnd {
    return this.tracer.startSpan('switchyard.queue', { kind: SpanKind.INTERNAL, attributes: { 'switchyard.backend.id': backendId } }, this.context);
  }

  attempt(target: Target, attempt: number, reason: string | undefined, endpoint: string | undefined): AttemptTrace {
    const backend = target.backend;
    const { address, port } = addressOf(backend);
    const operation = operationOf(endpoint);
    const span = this.tracer.startSpan(
      operation === undefined ? `upstream ${target.model}` : `${operation} ${target.model}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          [GEN_AI_OPERATION_NAME]: operation,
          [GEN_AI_REQUEST_MODEL]: target.model,
          [ATTR_SERVER_ADDRESS]: address,
          [ATTR_SERVER_PORT]: port,
          'switchyard.backend.id': backend.id,
          'switchyard.backend.kind': backend.kind.name,
          'switchyard.attempt': attempt,
          'switchyard.failover': attempt > 1,
          'switchyard.route.reason': reason,
        },
      },
      this.context,
    );
    const headers: Record<string, string> = {};
    this.propagator.inject(trace.setSpan(this.context, span), headers, defaultTextMapSetter);
    return {
      headers,
      end: (status, firstByteMs, streamed, failure) => {
        if (status === 200 && failure === undefined) this.responseModel = target.model;
        if (span.isRecording()) {
          const attributes: Attributes = {
            [ATTR_HTTP_RESPONSE_STATUS_CODE]: status > 0 ? status : undefined,
            'switchyard.upstream.first_byte_ms': firstByteMs === undefined ? undefined : Math.round(firstByteMs * 10) / 10,
            'switchyard.upstream.streamed': streamed,
          };
          if (status === 200 && failure === undefined) attributes[GEN_AI_RESPONSE_MODEL] = target.model;
          if (streamed && firstByteMs !== undefined) attributes['switchyard.ttft_ms'] = Math.round(firstByteMs * 10) / 10;
          if (failure !== undefined) {
            attributes[ATTR_ERROR_TYPE] = failure;
            span.setStatus({ code: SpanStatusCode.ERROR });
          }
          span.setAttributes(attributes);
        }
        span.end();
      },
    };
  }

  end(record: RequestRecord, request: FastifyRequest): void {
    const span = this.span;
    if (!span.isRecording()) {
      span.end();
      return;
    }
    const operation = operationOf(record.endpoint);
    const route = request.routeOptions.url;
    span.updateName(operation !== undefined && record.model !== undefined ? `${operation} ${record.model}` : `${request.method} ${route ?? ''}`.trim());
    const attributes: Attributes = {
      [ATTR_HTTP_REQUEST_METHOD]: request.method,
      [ATTR_HTTP_ROUTE]: route,
      [ATTR_HTTP_RESPONSE_STATUS_CODE]: record.status > 0 ? record.status : undefined,
      [ATTR_SERVER_ADDRESS]: request.hostname,
      [GEN_AI_OPERATION_NAME]: operation,
      [GEN_AI_REQUEST_MODEL]: record.model,
      [GEN_AI_RESPONSE_MODEL]: record.cache === 'hit' ? undefined : this.responseModel,
      [GEN_AI_USAGE_INPUT_TOKENS]: record.usage?.prompt_tokens,
      [GEN_AI_USAGE_OUTPUT_TOKENS]: record.usage?.completion_tokens,
      'switchyard.request_id': record.requestId,
      'switchyard.backend.id': record.backend,
      'switchyard.attempts': record.attempts,
      'switchyard.stream': record.stream,
      'switchyard.cache': record.cache,
      'switchyard.route.reason': record.routeReason,
      'switchyard.tenant': record.tenant,
      'switchyard.ttft_ms': record.firstByteMs === undefined ? undefined : Math.round(record.firstByteMs * 10) / 10,
    };
    if (record.clientClosed) attributes['switchyard.client_closed'] = true;
    if (record.errorName !== undefined) attributes[ATTR_ERROR_TYPE] = record.errorName;
    // A server span is in error for 5xx answers only (4xx are the client's).
    if (record.status >= 500) {
      attributes[ATTR_ERROR_TYPE] ??= String(record.status);
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.setAttributes(attributes);
    span.end();
  }
}
