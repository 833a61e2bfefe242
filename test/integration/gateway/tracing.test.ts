/**
 * OpenTelemetry tracing, end to end: the openai SDK sends real requests
 * through the gateway to simulators; the gateway exports OTLP/HTTP to a real
 * OpenTelemetry Collector (built once by `npm run otelcol:setup`), which
 * forwards what it accepted as OTLP/JSON to a receiver in this test. Without
 * the collector binary the gateway exports straight to that receiver (said
 * once on stderr). Checked: the GenAI attributes, the parent/child structure
 * (request > cache lookup, admission queue, each upstream attempt), the
 * traceparent each backend received, a client's traceparent continued, and
 * that no prompt or answer text is anywhere in what was exported.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backendFor, closedAfterEach, waitFor } from '../../helpers/gateway.ts';
import { type Collector, otelcolBinary, type OtlpReceiver, type ReceivedSpan, startCollector, startOtlpReceiver } from '../../helpers/otelcol.ts';

// OTLP span kinds.
const INTERNAL = 1;
const SERVER = 2;
const CLIENT = 3;
const ERROR = 2;

const secret = 'violet heron counts seventeen lanterns at midnight';

let receiver: OtlpReceiver;
let collector: Collector | undefined;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  const binary = otelcolBinary();
  if (existsSync(binary)) collector = await startCollector(binary, receiver.url);
  else {
    process.stderr.write(
      `tracing.test: no OpenTelemetry Collector at ${binary} (build it with \`npm run otelcol:setup\`, needs Go): the gateway exports to the test's OTLP receiver directly\n`,
    );
  }
});

afterAll(async () => {
  await collector?.close();
  await receiver?.close();
});

function tracing(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { enabled: true, endpoint: collector?.tracesUrl ?? `${receiver.url}/v1/traces`, serviceName: 'switchyard-test', ...extra };
}

/** The spans of the trace whose request span has `requestId`: the request span first. */
function traceOf(requestId: string): { request: ReceivedSpan; children: ReceivedSpan[] } {
  const spans = receiver.spans();
  const request = spans.find((span) => span.kind === SERVER && span.attributes['switchyard.request_id'] === requestId);
  if (!request) throw new Error(`no request span for ${requestId} among ${spans.length} spans`);
  return { request, children: spans.filter((span) => span.parentSpanId === request.spanId) };
}

function hasRequestSpan(requestId: string): boolean {
  return receiver.spans().some((span) => span.attributes['switchyard.request_id'] === requestId);
}

/** Everything exported, as the receiver got it (resource, scopes, spans, attribute keys and values). */
function exportedText(): string {
  return receiver.exports.map((sent) => sent.text).join('\n');
}

describe('tracing', () => {
  const { sim, gateway: startGateway } = closedAfterEach();

  it('exports a request span with GenAI attributes and one child per attempt; each backend gets its attempt as traceparent', async () => {
    const failing = await sim({ flavor: 'vllm', failRate: 1, failMode: '500' });
    const good = await sim({ flavor: 'vllm' });
    const gateway = await startGateway({
      tracing: tracing(),
      backends: [backendFor('failing', failing), backendFor('good', good)],
      models: [
        {
          name: 'm',
          policy: 'weighted',
          targets: [
            { backend: 'failing', model: 'Qwen/Qwen3-8B', weight: 1 },
            { backend: 'good', model: 'Qwen/Qwen3-8B', weight: 0 },
          ],
        },
      ],
    });
    const answer = await gateway
      .client()
      .chat.completions.create({ model: 'm', messages: [{ role: 'user', content: secret }], max_tokens: 12 }, { headers: { 'x-request-id': 'trace-failover' } });
    const text = answer.choices[0]?.message.content ?? '';
    expect(text.length).toBeGreaterThan(10);
    await gateway.close(); // flushes the spans
    await waitFor(() => hasRequestSpan('trace-failover'), 5_000, 'the request span at the receiver');

    const { request, children } = traceOf('trace-failover');
    expect(request.name).toBe('chat m');
    expect(request.parentSpanId).toBeUndefined();
    expect(request.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'm',
      'gen_ai.response.model': 'Qwen/Qwen3-8B',
      'gen_ai.usage.input_tokens': answer.usage?.prompt_tokens,
      'gen_ai.usage.output_tokens': answer.usage?.completion_tokens,
      'http.request.method': 'POST',
      'http.route': '/v1/chat/completions',
      'http.response.status_code': 200,
      'server.address': '127.0.0.1',
      'switchyard.backend.id': 'good',
      'switchyard.attempts': 2,
      'switchyard.stream': false,
      'switchyard.route.reason': 'failover:upstream-status',
    });
    expect(request.statusCode).not.toBe(ERROR);

    const attempts = children.filter((span) => span.kind === CLIENT).sort((a, b) => Number(a.attributes['switchyard.attempt']) - Number(b.attributes['switchyard.attempt']));
    expect(attempts.map((span) => span.name)).toEqual(['chat Qwen/Qwen3-8B', 'chat Qwen/Qwen3-8B']);
    const [first, second] = attempts as [ReceivedSpan, ReceivedSpan];
    expect(first.attributes).toMatchObject({
      'switchyard.backend.id': 'failing',
      'switchyard.backend.kind': 'vllm',
      'switchyard.attempt': 1,
      'switchyard.failover': false,
      'http.response.status_code': 500,
      'error.type': 'upstream-status',
      'server.address': '127.0.0.1',
      'server.port': failing.port,
      'gen_ai.request.model': 'Qwen/Qwen3-8B',
    });
    expect(first.statusCode).toBe(ERROR);
    expect(second.attributes).toMatchObject({
      'switchyard.backend.id': 'good',
      'switchyard.attempt': 2,
      'switchyard.failover': true,
      'switchyard.route.reason': 'failover:upstream-status',
      'http.response.status_code': 200,
      'server.port': good.port,
      'gen_ai.response.model': 'Qwen/Qwen3-8B',
    });
    expect(second.attributes['error.type']).toBeUndefined();
    expect(second.attributes['switchyard.upstream.first_byte_ms']).toBeGreaterThan(0);
    for (const span of attempts) expect(span.traceId).toBe(request.traceId);

    // Each backend got its own attempt's span as parent, sampled, so its spans join this trace.
    expect(failing.stats().lastRequest?.headers.traceparent).toBe(`00-${request.traceId}-${first.spanId}-01`);
    expect(good.stats().lastRequest?.headers.traceparent).toBe(`00-${request.traceId}-${second.spanId}-01`);

    // The resource names the service; nothing the client wrote or read is anywhere in the export.
    const exported = exportedText();
    expect(exported).toContain('switchyard-test');
    expect(exported).not.toContain('violet heron');
    expect(exported).not.toContain('lanterns');
    expect(exported).not.toContain(text.slice(0, 24));
    // Through the collector when it is there: what the receiver got is the collector's re-export.
    if (collector) for (const sent of receiver.exports) expect(sent.headers['user-agent']).toContain("Switchyard's tracing tests");
  });

  it('continues a client traceparent, times the admission queue and a stream, and marks cache lookups', async () => {
    const backend = await sim({ flavor: 'vllm', ttftMs: 5, tokensPerSecond: 100 });
    const gateway = await startGateway({
      tracing: tracing(),
      backends: [backendFor('slot', backend, { maxConcurrency: 1 })],
      models: [{ name: 'm', cache: { mode: 'deterministic' }, targets: [{ backend: 'slot', model: 'Qwen/Qwen3-8B' }] }],
    });
    const client = gateway.client();
    const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';

    // A stream holds the backend's one slot (about 300 ms), so the next request waits in the gateway's queue.
    const stream = await client.chat.completions.create(
      { model: 'm', messages: [{ role: 'user', content: secret }], max_tokens: 30, stream: true, stream_options: { include_usage: true } },
      { headers: { 'x-request-id': 'trace-stream', traceparent: `00-${callerTrace}-${callerSpan}-01` } },
    );
    await waitFor(() => backend.stats().running === 1, 3_000, 'the stream to hold the slot');
    const queued = client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: secret }], max_tokens: 2 }, { headers: { 'x-request-id': 'trace-queued' } });
    let streamed = '';
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? '';
    await queued;

    // Deterministic requests go through the cache: a miss, then a hit.
    const deterministic = { model: 'm', messages: [{ role: 'user' as const, content: secret }], max_tokens: 4, temperature: 0 };
    await client.chat.completions.create(deterministic, { headers: { 'x-request-id': 'trace-miss' } });
    await client.chat.completions.create(deterministic, { headers: { 'x-request-id': 'trace-hit' } });
    await gateway.close();
    await waitFor(() => ['trace-stream', 'trace-queued', 'trace-miss', 'trace-hit'].every(hasRequestSpan), 5_000, 'the four request spans');

    const streamTrace = traceOf('trace-stream');
    expect(streamTrace.request.traceId).toBe(callerTrace);
    expect(streamTrace.request.parentSpanId).toBe(callerSpan);
    expect(streamTrace.request.attributes).toMatchObject({ 'switchyard.stream': true, 'gen_ai.request.model': 'm', 'switchyard.cache': 'bypass' });
    expect(streamTrace.request.attributes['switchyard.ttft_ms']).toBeGreaterThan(0);
    const [streamAttempt] = streamTrace.children.filter((span) => span.kind === CLIENT);
    expect(streamAttempt?.attributes).toMatchObject({ 'switchyard.upstream.streamed': true, 'http.response.status_code': 200 });
    expect(streamAttempt?.attributes['switchyard.ttft_ms']).toBeGreaterThan(0);
    expect(streamTrace.request.attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0);

    const queuedTrace = traceOf('trace-queued');
    expect(queuedTrace.request.traceId).not.toBe(callerTrace);
    const queueSpans = queuedTrace.children.filter((span) => span.name === 'switchyard.queue');
    expect(queueSpans).toHaveLength(1);
    expect(queueSpans[0]?.kind).toBe(INTERNAL);
    expect(queueSpans[0]?.attributes['switchyard.backend.id']).toBe('slot');
    expect(queuedTrace.children.filter((span) => span.kind === CLIENT)).toHaveLength(1);

    const miss = traceOf('trace-miss');
    expect(miss.children.find((span) => span.name === 'switchyard.cache')?.attributes['switchyard.cache.result']).toBe('miss');
    expect(miss.children.filter((span) => span.kind === CLIENT)).toHaveLength(1);
    const hit = traceOf('trace-hit');
    expect(hit.request.attributes).toMatchObject({ 'switchyard.cache': 'hit', 'switchyard.backend.id': 'cache', 'gen_ai.usage.output_tokens': 4 });
    expect(hit.children.find((span) => span.name === 'switchyard.cache')?.attributes['switchyard.cache.result']).toBe('hit');
    expect(hit.children.filter((span) => span.kind === CLIENT)).toHaveLength(0);

    const exported = exportedText();
    expect(exported).not.toContain('violet heron');
    expect(streamed.length).toBeGreaterThan(10);
    expect(exported).not.toContain(streamed.slice(0, 24));
  });

  it('samples new traces at sampleRatio, propagating the decision, and follows a sampled caller', async () => {
    const backend = await sim({ flavor: 'vllm' });
    const gateway = await startGateway({
      tracing: tracing({ sampleRatio: 0 }),
      backends: [backendFor('b', backend)],
      models: [{ name: 'm', targets: [{ backend: 'b', model: 'Qwen/Qwen3-8B' }] }],
    });
    const client = gateway.client();
    const ask = { model: 'm', messages: [{ role: 'user' as const, content: secret }], max_tokens: 2 };
    await client.chat.completions.create(ask, { headers: { 'x-request-id': 'trace-unsampled' } });
    // Not recorded, but the backend still learns the trace and that it is not sampled.
    expect(backend.stats().lastRequest?.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    const callerTrace = '0af7651916cd43dd8448eb211c80319c';
    await client.chat.completions.create(ask, { headers: { 'x-request-id': 'trace-sampled-caller', traceparent: `00-${callerTrace}-b7ad6b7169203331-01` } });
    expect(backend.stats().lastRequest?.headers.traceparent).toMatch(new RegExp(`^00-${callerTrace}-[0-9a-f]{16}-01$`));
    await gateway.close();
    await waitFor(() => hasRequestSpan('trace-sampled-caller'), 5_000, 'the sampled request span');
    expect(hasRequestSpan('trace-unsampled')).toBe(false);
    expect(traceOf('trace-sampled-caller').request.traceId).toBe(callerTrace);
  });

  it('sends no traceparent upstream and exports nothing when off (the default)', async () => {
    const backend = await sim({ flavor: 'vllm' });
    const before = receiver.exports.length;
    const gateway = await startGateway({ backends: [backendFor('b', backend)], models: [{ name: 'm', targets: [{ backend: 'b', model: 'Qwen/Qwen3-8B' }] }] });
    expect(gateway.config.tracing.enabled).toBe(false);
    await gateway.client().chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    await gateway.close();
    expect(backend.stats().lastRequest?.headers.traceparent).toBeUndefined();
    expect(receiver.exports.length).toBe(before);
  });
});
