/**
 * Request bodies are bounded one by one (server.bodyLimitBytes, 413) and all
 * together (server.maxInflightBodyBytes, 503 with retry-after), and a client
 * that streams a body over the limit (Node fetch, the openai SDK) gets the
 * documented 413 rather than a reset connection.
 */
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { closedAfterEach, post } from '../../helpers/gateway.ts';
import { startScriptedBackend, type ScriptedBackend } from '../../helpers/scripted-backend.ts';

const { gateway: gatewayWith } = closedAfterEach();
const backends: ScriptedBackend[] = [];
afterEach(async () => {
  while (backends.length > 0) await backends.pop()?.close();
});

const MiB = 1024 * 1024;
const answer = JSON.stringify({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'x',
  choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
});

/** A backend that answers every chat request after `delayMs` (so concurrent requests overlap). */
async function slowBackend(delayMs: number): Promise<ScriptedBackend> {
  const backend = await startScriptedBackend((_request, response) => {
    setTimeout(() => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(answer);
    }, delayMs);
  });
  backends.push(backend);
  return backend;
}

function gatewayConfig(backend: ScriptedBackend, server: Record<string, unknown>): Record<string, unknown> {
  return {
    server,
    backends: [{ id: 'b', kind: 'openai', url: backend.url, health: { intervalMs: 60_000 } }],
    models: [{ name: 'x', targets: [{ backend: 'b', model: 'x' }] }],
  };
}

/** A chat body of about `bytes` bytes. */
function chatBody(bytes: number): string {
  return JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'a'.repeat(bytes) }], max_tokens: 1 });
}

describe('request body bounds', () => {
  it('serves concurrent large bodies up to server.maxInflightBodyBytes and refuses the rest with 503 server_busy and retry-after', async () => {
    const backend = await slowBackend(800);
    const gateway = await gatewayWith(gatewayConfig(backend, { maxInflightBodyBytes: 64 * MiB }));
    const body = chatBody(20 * MiB);
    const results = await Promise.all(Array.from({ length: 8 }, () => post(`${gateway.baseURL}/chat/completions`, body)));
    const served = results.filter((result) => result.status === 200);
    const refused = results.filter((result) => result.status !== 200);
    // 64 MiB holds three 20 MiB bodies at once; each is held until its answer is sent.
    expect(served).toHaveLength(3);
    expect(refused).toHaveLength(5);
    for (const result of refused) {
      expect(result.status).toBe(503);
      expect(result.headers.get('retry-after')).toBe('1');
      expect(result.json.error).toMatchObject({ type: 'server_error', code: 'server_busy', param: null });
    }
    // Everything held is given back: the same burst again is served the same way.
    const again = await Promise.all(Array.from({ length: 3 }, () => post(`${gateway.baseURL}/chat/completions`, body)));
    expect(again.map((result) => result.status)).toEqual([200, 200, 200]);
    expect(gateway.app.bodyBudget.held).toBe(0);
  });

  it('counts chunked bodies as they arrive', async () => {
    const backend = await slowBackend(800);
    const gateway = await gatewayWith(gatewayConfig(backend, { maxInflightBodyBytes: 8 * MiB }));
    const piece = new TextEncoder().encode('a'.repeat(MiB));
    const send = () =>
      fetch(`${gateway.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        duplex: 'half',
        body: new ReadableStream({
          start(controller) {
            controller.enqueue(new TextEncoder().encode('{"model":"x","max_tokens":1,"messages":[{"role":"user","content":"'));
            for (let index = 0; index < 6; index++) controller.enqueue(piece);
            controller.enqueue(new TextEncoder().encode('"}]}'));
            controller.close();
          },
        }),
      } as RequestInit).then(async (response) => ({ status: response.status, json: (await response.json()) as { error?: { code: string } } }));
    const results = await Promise.all([send(), send()]);
    expect(results.map((result) => result.status).sort()).toEqual([200, 503]);
    expect(results.find((result) => result.status === 503)?.json.error?.code).toBe('server_busy');
    expect(gateway.app.bodyBudget.held).toBe(0);
  });

  it('a client streaming 40 MiB over the limit gets the 413 every time (Node fetch and the openai SDK), and the connection is not left to it', async () => {
    const backend = await slowBackend(0);
    const gateway = await gatewayWith(gatewayConfig(backend, {}));
    const big = chatBody(40 * MiB);
    for (let index = 0; index < 10; index++) {
      const response = await post(`${gateway.baseURL}/chat/completions`, big);
      expect(response.status, `fetch with a declared length, try ${index}`).toBe(413);
      expect(response.json.error.code).toBe('request_too_large');
    }
    const chunk = new TextEncoder().encode('a'.repeat(MiB));
    for (let index = 0; index < 10; index++) {
      const response = await fetch(`${gateway.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        duplex: 'half',
        body: new ReadableStream({
          start(controller) {
            for (let megabyte = 0; megabyte < 40; megabyte++) controller.enqueue(chunk);
            controller.close();
          },
        }),
      } as RequestInit);
      expect(response.status, `fetch with a chunked body, try ${index}`).toBe(413);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('request_too_large');
    }
    const client = new OpenAI({ baseURL: gateway.baseURL, apiKey: 'k', maxRetries: 0 });
    for (let index = 0; index < 10; index++) {
      const failure = await client.chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'a'.repeat(40 * MiB) }] }).catch((error: unknown) => error);
      expect(failure, `openai SDK, try ${index}`).toBeInstanceOf(OpenAI.APIError);
      expect((failure as InstanceType<typeof OpenAI.APIError>).status).toBe(413);
      expect((failure as InstanceType<typeof OpenAI.APIError>).code).toBe('request_too_large');
    }
    expect(backend.requests).toHaveLength(0);
    expect(gateway.app.bodyBudget.held).toBe(0);
  }, 60_000);
});
