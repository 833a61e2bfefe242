/**
 * Upstream faults: down, unreachable, dying mid-stream, hanging, failing with
 * 5xx; the client gets a failover or a clean OpenAI-shaped error.
 */
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { backendFor, closedAfterEach, post, waitFor } from '../../helpers/gateway.ts';

const { sim, gateway: gatewayWith } = closedAfterEach();

/** A loopback port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const messages = [{ role: 'user' as const, content: 'hello' }];

describe('upstream faults', () => {
  it('fails over from a backend that refuses connections, without the client noticing', async () => {
    const good = await sim({ flavor: 'vllm' });
    const port = await deadPort();
    const gateway = await gatewayWith({
      backends: [{ id: 'dead', kind: 'vllm', url: `http://127.0.0.1:${port}`, health: { intervalMs: 60_000 } }, backendFor('good', good)],
      models: [
        {
          name: 'm',
          targets: [
            { backend: 'dead', model: 'Qwen/Qwen3-8B' },
            { backend: 'good', model: 'Qwen/Qwen3-8B' },
          ],
        },
      ],
    });
    for (let index = 0; index < 10; index++) {
      const answer = await gateway.client().chat.completions.create({ model: 'm', messages, max_tokens: 2 });
      expect(answer.model).toBe('m');
    }
    expect(good.stats().completed).toBe(10);
  });

  it('answers 503 no_backend_available with retry-after when every backend is down', async () => {
    const port = await deadPort();
    const gateway = await gatewayWith({
      backends: [{ id: 'dead', kind: 'llamacpp', url: `http://127.0.0.1:${port}` }],
      models: [{ name: 'm', targets: [{ backend: 'dead', model: 'x' }] }],
    });
    const response = await post(`${gateway.baseURL}/chat/completions`, JSON.stringify({ model: 'm', messages }));
    expect(response.status).toBe(503);
    expect(response.json.error.code).toBe('no_backend_available');
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
    const ready = await fetch(`${gateway.url}/readyz`);
    expect(ready.status).toBe(503);
  });

  it('answers 502 upstream_unreachable when the only backend stops between probes', async () => {
    const doomed = await sim({ flavor: 'vllm' });
    const gateway = await gatewayWith({
      backends: [backendFor('doomed', doomed, { health: { intervalMs: 60_000 } })],
      models: [{ name: 'm', targets: [{ backend: 'doomed', model: 'Qwen/Qwen3-8B' }] }],
    });
    await doomed.close();
    const response = await post(`${gateway.baseURL}/chat/completions`, JSON.stringify({ model: 'm', messages }));
    expect(response.status).toBe(502);
    expect(response.json.error).toMatchObject({ type: 'server_error', code: 'upstream_unreachable' });
  });

  it('retries a 500 on the next backend and reports the attempts', async () => {
    const failing = await sim({ flavor: 'vllm', failRate: 1, failMode: '500' });
    const good = await sim({ flavor: 'llamacpp' });
    const gateway = await gatewayWith({
      backends: [backendFor('failing', failing), backendFor('good', good)],
      models: [
        {
          name: 'm',
          policy: 'weighted',
          targets: [
            { backend: 'failing', model: 'Qwen/Qwen3-8B', weight: 1 },
            { backend: 'good', model: 'x', weight: 0 },
          ],
        },
      ],
    });
    const response = await post(`${gateway.baseURL}/chat/completions`, JSON.stringify({ model: 'm', messages, max_tokens: 2 }));
    expect(response.status).toBe(200);
    expect(response.headers.get('x-switchyard-backend')).toBe('good');
    expect(response.headers.get('x-switchyard-attempts')).toBe('2');
    expect(response.headers.get('x-switchyard-route-reason')).toBe('failover:upstream-status');
  });

  it('passes a 500 on in OpenAI shape when no other backend is left', async () => {
    const failing = await sim({ flavor: 'llamacpp', failRate: 1, failMode: '500' });
    const gateway = await gatewayWith({
      backends: [backendFor('failing', failing)],
      models: [{ name: 'm', targets: [{ backend: 'failing', model: 'x' }] }],
    });
    const response = await post(`${gateway.baseURL}/chat/completions`, JSON.stringify({ model: 'm', messages }));
    expect(response.status).toBe(500);
    expect(response.json.error).toMatchObject({ type: 'server_error' });
    expect(typeof response.json.error.code === 'string' || response.json.error.code === null).toBe(true);
  });

  it('ends a stream that dies mid-way with an error event, never a clean end', async () => {
    const dying = await sim({ flavor: 'vllm', failRate: 1, failMode: 'die-mid-stream', tokensPerSecond: 200 });
    const gateway = await gatewayWith({
      backends: [backendFor('dying', dying)],
      models: [{ name: 'm', targets: [{ backend: 'dying', model: 'Qwen/Qwen3-8B' }] }],
    });
    const stream = await gateway.client().chat.completions.create({ model: 'm', messages, max_tokens: 50, stream: true });
    let chunks = 0;
    await expect(
      (async () => {
        for await (const _chunk of stream) chunks++;
      })(),
    ).rejects.toThrow(/ended|closed|incomplete/i);
    expect(chunks).toBeGreaterThan(0);
    const raw = await fetch(`${gateway.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages, max_tokens: 50, stream: true }),
    });
    const text = await raw.text();
    expect(text).not.toContain('[DONE]');
    const last = text.trim().split('\n\n').at(-1) ?? '';
    expect(JSON.parse(last.slice('data: '.length))).toEqual({
      error: { message: expect.any(String), type: 'server_error', param: null, code: 'upstream_stream_interrupted' },
    });
  });

  it('times out a hanging backend with 504 and frees the connection', async () => {
    const hanging = await sim({ flavor: 'vllm', failRate: 1, failMode: 'hang' });
    const gateway = await gatewayWith({
      backends: [backendFor('hanging', hanging, { timeouts: { firstByteMs: 300 } })],
      models: [{ name: 'm', retries: 0, targets: [{ backend: 'hanging', model: 'Qwen/Qwen3-8B' }] }],
    });
    const started = Date.now();
    const response = await post(`${gateway.baseURL}/chat/completions`, JSON.stringify({ model: 'm', messages }));
    expect(response.status).toBe(504);
    expect(response.json.error).toMatchObject({ type: 'server_error', code: 'upstream_timeout' });
    expect(Date.now() - started).toBeLessThan(3_000);
    const streamed = await post(`${gateway.baseURL}/chat/completions`, JSON.stringify({ model: 'm', messages, stream: true }));
    expect(streamed.status).toBe(504);
  });

  it('ends a stream that goes silent with an idle-timeout error event', async () => {
    const slow = await sim({ flavor: 'vllm', tokensPerSecond: 2 });
    const gateway = await gatewayWith({
      backends: [backendFor('slow', slow, { timeouts: { idleMs: 200 } })],
      models: [{ name: 'm', targets: [{ backend: 'slow', model: 'Qwen/Qwen3-8B' }] }],
    });
    const raw = await fetch(`${gateway.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages, max_tokens: 20, stream: true }),
    });
    expect(raw.status).toBe(200);
    const text = await raw.text();
    expect(text).toContain('"code":"upstream_timeout"');
    expect(text).not.toContain('[DONE]');
    await waitFor(() => slow.stats().running === 0, 2_000, 'the simulator slot to be freed');
  });

  it('cancels upstream when a client leaves before the first byte and during a non-streaming request', async () => {
    const slow = await sim({ flavor: 'vllm', ttftMs: 1_000 });
    const gateway = await gatewayWith({
      backends: [backendFor('slow', slow)],
      models: [{ name: 'm', targets: [{ backend: 'slow', model: 'Qwen/Qwen3-8B' }] }],
    });
    for (const stream of [true, false]) {
      const before = slow.stats().cancelled;
      const controller = new AbortController();
      const pending = gateway.client().chat.completions.create({ model: 'm', messages, stream }, { signal: controller.signal });
      await waitFor(() => slow.stats().running === 1, 2_000, 'the request to reach the simulator');
      controller.abort();
      await expect(pending).rejects.toThrow();
      await waitFor(() => slow.stats().cancelled === before + 1 && slow.stats().running === 0, 1_000, 'the simulator to see the cancel');
    }
  });
});
