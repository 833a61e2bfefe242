/**
 * Upstream error bodies never reach a client verbatim (issue 13 item 8). A hostile backend answers with a
 * Python traceback, an HTML error page naming internal hosts, a body echoing the request headers (the gateway's
 * own backend API key among them), a 2 MB message and odd `code`s, as JSON answers and as error events inside a
 * stream. Clients (the openai SDK, the Anthropic surface, raw HTTP) see a clean, bounded error in their surface's
 * shape with the upstream's status; the operator's debug log has the detail, with the secret redacted.
 */
import Anthropic from '@anthropic-ai/sdk';
import type { IncomingMessage, ServerResponse } from 'node:http';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, startTestGateway, type TestGateway } from '../../helpers/gateway.ts';
import { startScriptedBackend, type ScriptedBackend } from '../../helpers/scripted-backend.ts';
import { sseEvents } from '../../helpers/sse.ts';

const apiKey = 'sk-backend-secret-7f3a9c1e5b2d4f6a';
const traceback = `Traceback (most recent call last):
  File "/usr/lib/python3.12/site-packages/vllm/entrypoints/openai/serving_chat.py", line 612, in create_chat_completion
    raise RuntimeError("CUDA error: device-side assert triggered on gpu-node-7.internal:2379")
RuntimeError: CUDA error: device-side assert triggered`;
const html = `<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><p>upstream db.internal:5432 timed out (10.20.30.40)</p><hr><center>nginx/1.25.3</center></body></html>`;

/** What the hostile backend answers, picked by the prompt. */
function answer(request: IncomingMessage, response: ServerResponse, body: string): void {
  const prompt = (JSON.parse(body) as { messages: Array<{ content: unknown }> }).messages.at(-1)?.content;
  const text = typeof prompt === 'string' ? prompt : JSON.stringify(prompt);
  const json = (status: number, payload: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(typeof payload === 'string' ? payload : JSON.stringify(payload));
  };
  if (text.includes('traceback')) return json(500, { error: { message: traceback, type: 'InternalServerError', code: 500 } });
  if (text.includes('html')) {
    response.writeHead(502, { 'content-type': 'text/html' });
    response.end(html);
    return;
  }
  if (text.includes('echo')) return json(400, { detail: `Bad request. Headers: ${JSON.stringify(request.headers)}` });
  if (text.includes('huge')) return json(400, { error: { message: `invalid value ${'z'.repeat(2_000_000)}`, type: 'BadRequestError', code: null } });
  if (text.includes('oddcode')) return json(422, { error: { message: 'bad param', type: '<script>', code: 'x'.repeat(500), param: 'a b c' } });
  if (text.includes('stream')) {
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    const chunk = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'x', choices: [{ index: 0, delta: { content: 'Hi' }, finish_reason: null }] };
    response.write(`data: ${JSON.stringify(chunk)}\n\n`);
    response.end(`data: ${JSON.stringify({ error: { message: `${traceback}\nAuthorization: Bearer ${apiKey}`, type: 'InternalServerError', code: 500 } })}\n\n`);
    return;
  }
  json(200, { id: 'c', object: 'chat.completion', created: 1, model: 'x', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }] });
}

let backend: ScriptedBackend;
let gateway: TestGateway;

beforeAll(async () => {
  backend = await startScriptedBackend(answer);
  gateway = await startTestGateway({
    backends: [{ id: 'hostile', kind: 'openai', url: backend.url, apiKey, health: { intervalMs: 60_000 }, circuit: { consecutiveFailures: 1000 } }],
    models: [{ name: 'm', targets: [{ backend: 'hostile', model: 'x' }], retries: 0 }],
    logging: { level: 'debug' },
  });
});

afterAll(async () => {
  await gateway?.close();
  await backend?.close();
});

const leaks = [apiKey, 'Traceback', 'File "', '.py', 'db.internal', '5432', '10.20.30.40', 'gpu-node-7', '<html', '<h1', 'nginx'];
function expectClean(message: string): void {
  for (const leak of leaks) expect(message, `message shows ${leak}`).not.toContain(leak);
  expect(message.length).toBeLessThanOrEqual(700);
}

async function openaiError(prompt: string): Promise<InstanceType<typeof OpenAI.APIError>> {
  const client = new OpenAI({ apiKey: 'unused', baseURL: gateway.baseURL, maxRetries: 0 });
  const error = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: prompt }] }).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(OpenAI.APIError);
  return error as InstanceType<typeof OpenAI.APIError>;
}

describe('JSON error answers', () => {
  it('a Python traceback: the exception line, status kept', async () => {
    const error = await openaiError('traceback');
    expect(error.status).toBe(500);
    expect(error.message).toContain('RuntimeError: CUDA error: device-side assert triggered');
    expectClean(error.message);
  });

  it('an HTML error page: its title, no internal hosts', async () => {
    const error = await openaiError('html');
    expect(error.status).toBe(502);
    expect(error.message).toContain('502 Bad Gateway');
    expectClean(error.message);
  });

  it("a backend echoing the request headers never shows the gateway's backend API key", async () => {
    const answer = await post(`${gateway.baseURL}/chat/completions`, JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'echo' }] }));
    expect(answer.status).toBe(400);
    expect(answer.text).not.toContain(apiKey);
    expect(answer.json.error).toMatchObject({ type: 'invalid_request_error' });
    expect(typeof answer.json.error.code).toBe('string');
    expectClean(answer.json.error.message);
  });

  it('a 2 MB message is bounded; odd codes, types and params are not relayed', async () => {
    const huge = await post(`${gateway.baseURL}/chat/completions`, JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'huge' }] }));
    expect(huge.status).toBe(400);
    expect(huge.text.length).toBeLessThan(2_000);
    const odd = await post(`${gateway.baseURL}/chat/completions`, JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'oddcode' }] }));
    expect(odd.status).toBe(422);
    expect(odd.json.error).toEqual({ message: 'bad param', type: 'invalid_request_error', param: null, code: expect.any(String) });
    expect(String(odd.json.error.code).length).toBeLessThan(64);
  });

  it('the Anthropic surface gets the same clean message in its own shape', async () => {
    const client = new Anthropic({ apiKey: 'unused', baseURL: gateway.url, maxRetries: 0 });
    const error = await client.messages.create({ model: 'm', max_tokens: 8, messages: [{ role: 'user', content: 'html' }] }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    const apiError = error as InstanceType<typeof Anthropic.APIError>;
    expect(apiError.status).toBe(502);
    expect((apiError.error as { type?: string }).type).toBe('error');
    expectClean(JSON.stringify(apiError.error));
  });
});

describe('error events inside a stream', () => {
  it('end the stream with a clean error event', async () => {
    const response = await fetch(`${gateway.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'stream' }] }),
    });
    const text = await response.text();
    expect(text).not.toContain(apiKey);
    const last = sseEvents(text).at(-1) as { error?: { message: string } };
    expect(last.error?.message).toContain('RuntimeError');
    expectClean(last.error?.message ?? '');
  });
});

describe('the operator', () => {
  it('finds the detail in the debug log, with the secret redacted', async () => {
    await openaiError('traceback');
    await post(`${gateway.baseURL}/chat/completions`, JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'echo' }] }));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const details = gateway.logs.filter((line) => line.includes('upstream error detail'));
    expect(details.some((line) => line.includes('Traceback') && line.includes('serving_chat.py'))).toBe(true);
    expect(details.some((line) => line.includes('Headers'))).toBe(true);
    for (const line of gateway.logs) expect(line).not.toContain(apiKey);
  });
});
