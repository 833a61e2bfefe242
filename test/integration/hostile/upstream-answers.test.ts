/**
 * A hostile upstream cannot make the gateway hold an answer without bound or
 * keep a client waiting for nothing: a JSON answer over backends[].maxAnswerBytes
 * and a stream event (or an endless line) over maxEventBytes fail cleanly — a
 * 502 before anything reached the client, an error event after — and a stream
 * request answered with JSON fails at once, not at the idle timeout.
 */
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { closedAfterEach, post } from '../../helpers/gateway.ts';
import { startScriptedBackend, type ScriptedBackend } from '../../helpers/scripted-backend.ts';
import { sseEvents } from '../../helpers/sse.ts';

const { gateway: gatewayWith } = closedAfterEach();
const backends: ScriptedBackend[] = [];
afterEach(async () => {
  while (backends.length > 0) await backends.pop()?.close();
});

const KiB = 1024;
const chunk = (content: string) =>
  `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'x', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;

/** Writes `piece` until the gateway goes away (an endless answer), respecting backpressure. */
function endless(response: ServerResponse, piece: string): void {
  const pump = () => {
    while (!response.destroyed && response.write(piece));
    if (!response.destroyed) response.once('drain', pump);
  };
  response.on('error', () => {});
  pump();
}

async function gatewayFor(answer: Parameters<typeof startScriptedBackend>[0], backend: Record<string, unknown> = {}) {
  const scripted = await startScriptedBackend(answer);
  backends.push(scripted);
  const gateway = await gatewayWith({
    backends: [
      {
        id: 'b',
        kind: 'openai',
        url: scripted.url,
        health: { intervalMs: 60_000 },
        maxAnswerBytes: 256 * KiB,
        maxEventBytes: 16 * KiB,
        // Long on purpose: every failure below must come from the bounds, not from a timeout.
        timeouts: { firstByteMs: 30_000, idleMs: 30_000 },
        ...backend,
      },
    ],
    models: [{ name: 'x', targets: [{ backend: 'b', model: 'x' }] }],
  });
  return { gateway, scripted };
}

const chatBody = (stream: boolean) => JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'hi' }], stream });

async function timed<T>(run: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const started = performance.now();
  const result = await run();
  return { result, ms: performance.now() - started };
}

describe('upstream answer bounds', () => {
  it('a JSON answer over maxAnswerBytes gets 502 upstream_answer_too_large, sent as it arrives or declared up front', async () => {
    let calls = 0;
    const { gateway } = await gatewayFor((_request, response) => {
      if (++calls === 2) {
        response.writeHead(200, { 'content-type': 'application/json', 'content-length': String(1024 * KiB) });
        response.write('{"id":"');
        return; // never finishes: the declared length alone is refused
      }
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write('{"id":"x","choices":[{"message":{"content":"');
      endless(response, 'a'.repeat(64 * KiB));
    });
    const { result, ms } = await timed(() => post(`${gateway.baseURL}/chat/completions`, chatBody(false)));
    expect(result.status).toBe(502);
    expect(result.json.error).toMatchObject({ type: 'server_error', code: 'upstream_answer_too_large', param: null });
    expect(result.json.error.message).toContain('maxAnswerBytes');
    expect(ms).toBeLessThan(5_000);
    const line = gateway.logs.map((text) => JSON.parse(text) as Record<string, unknown>).find((entry) => entry.msg === 'request completed');
    expect(line?.failures).toEqual(['b:answer-too-large']);
    const declared = await timed(() => post(`${gateway.baseURL}/chat/completions`, chatBody(false)));
    expect(declared.result.status).toBe(502);
    expect(declared.result.json.error.code).toBe('upstream_answer_too_large');
    expect(declared.ms).toBeLessThan(5_000);
  });

  it('a stream whose first line never ends gets 502 before the first byte; one that breaks later ends with an error event', async () => {
    let calls = 0;
    const { gateway } = await gatewayFor((_request, response) => {
      calls++;
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      if (calls === 2) response.write(chunk('hello'));
      response.write('data: {"choices":[{"delta":{"content":"');
      endless(response, 'a'.repeat(8 * KiB));
    });
    const first = await timed(() => post(`${gateway.baseURL}/chat/completions`, chatBody(true)));
    expect(first.result.status).toBe(502);
    expect(first.result.json.error.code).toBe('upstream_answer_too_large');
    expect(first.ms).toBeLessThan(5_000);

    const second = await timed(() => post(`${gateway.baseURL}/chat/completions`, chatBody(true)));
    expect(second.result.status).toBe(200);
    const events = sseEvents(second.result.text);
    expect(events[0]).toMatchObject({ choices: [{ delta: { content: 'hello' } }] });
    expect(events).toContainEqual({ error: expect.objectContaining({ code: 'upstream_answer_too_large', type: 'server_error' }) });
    expect(second.ms).toBeLessThan(5_000);
  });

  it('a stream request answered with JSON fails at once with 502, even when the JSON never ends', async () => {
    const { gateway } = await gatewayFor((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write('{"id":"x","object":"chat.completion","choices":[');
    });
    const { result, ms } = await timed(() => post(`${gateway.baseURL}/chat/completions`, chatBody(true)));
    expect(result.status).toBe(502);
    expect(result.json.error.code).toBe('upstream_error');
    expect(result.json.error.message).toContain('JSON, not an event stream');
    expect(ms).toBeLessThan(5_000);
  });

  it('a non-streaming client whose upstream stream was answered with JSON gets that JSON answer', async () => {
    const answer = {
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 1,
      model: 'x',
      choices: [{ index: 0, message: { role: 'assistant', content: 'plain' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
    };
    const { gateway, scripted } = await gatewayFor(
      (_request, response) => {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify(answer));
      },
      { streamUpstream: 'always' },
    );
    const result = await post(`${gateway.baseURL}/chat/completions`, chatBody(false));
    expect(result.status).toBe(200);
    expect(JSON.parse(result.text)).toMatchObject({ choices: [{ message: { content: 'plain' } }] });
    expect(JSON.parse(scripted.requests[0]?.body ?? '{}').stream).toBe(true);
  });

  it('an answer assembled from a stream for a non-streaming client is bounded by maxAnswerBytes', async () => {
    const { gateway } = await gatewayFor(
      (_request, response) => {
        response.writeHead(200, { 'content-type': 'text/event-stream' });
        endless(response, chunk('b'.repeat(4 * KiB)));
      },
      { streamUpstream: 'always' },
    );
    const { result, ms } = await timed(() => post(`${gateway.baseURL}/chat/completions`, chatBody(false)));
    expect(result.status).toBe(502);
    expect(result.json.error.code).toBe('upstream_answer_too_large');
    expect(ms).toBeLessThan(5_000);
  });
});
