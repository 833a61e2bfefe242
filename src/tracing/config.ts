/** The `tracing` config section (see otel.ts). */
import { type Static, Type } from '@sinclair/typebox';

/** OpenTelemetry traces over OTLP/HTTP (src/tracing/). Off by default: then the SDK is never loaded. */
export const TracingSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: false, description: 'one span per request, with child spans for the cache lookup, the admission queue and each upstream attempt' }),
    endpoint: Type.String({
      pattern: '^https?://',
      default: 'http://127.0.0.1:4318/v1/traces',
      description: 'the OTLP/HTTP traces URL of a collector (JSON encoding), path included',
    }),
    serviceName: Type.String({ minLength: 1, default: 'switchyard', description: 'the service.name resource attribute' }),
    sampleRatio: Type.Number({
      minimum: 0,
      maximum: 1,
      default: 1,
      description: 'share of new traces recorded; a request arriving with a traceparent follows the sampling decision of its caller',
    }),
    headers: Type.Record(Type.String({ minLength: 1 }), Type.String(), {
      default: {},
      description: 'extra HTTP headers on every export (an API key for a hosted collector, say; use ${ENV})',
    }),
    exportTimeoutMs: Type.Integer({ minimum: 1, default: 10_000, description: 'one export request gives up after this long (the spans are dropped)' }),
    maxQueueSize: Type.Integer({ minimum: 1, default: 2048, description: 'finished spans waiting for export; past it new spans are dropped' }),
  },
  { additionalProperties: false, default: {} },
);

export type TracingConfig = Static<typeof TracingSchema>;
