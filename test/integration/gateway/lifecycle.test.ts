/**
 * Health endpoints, logging rules, metrics, and graceful shutdown with a
 * stream in flight.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { backendFor, post, startSim, startTestGateway, waitFor } from '../../helpers/gateway.ts';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const secretPrompt = 'my-secret-prompt-text-4711';

describe('lifecycle', () => {
  it('serves /healthz and /readyz with backend detail', async () => {
    const sim = await startSim({ flavor: 'llamacpp' });
    cleanups.push(() => sim.close());
    const gateway = await startTestGateway({ backends: [backendFor('llama', sim)], models: [{ name: 'm', targets: [{ backend: 'llama', model: 'x' }] }] });
    cleanups.push(() => gateway.close());
    const health = await fetch(`${gateway.url}/healthz`);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${gateway.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', backends: [{ id: 'llama', kind: 'llamacpp', health: 'up' }] });
  });

  it('/readyz: its status code is public, its detail (backend ids, errors) needs the admin token or the admin listener', async () => {
    const sim = await startSim({ flavor: 'llamacpp' });
    cleanups.push(() => sim.close());
    const token = 'admin-token-readyz-0123456789';
    const gateway = await startTestGateway({
      backends: [backendFor('llama-internal-7', sim), { id: 'down-one', kind: 'llamacpp', url: 'http://127.0.0.1:9', health: { intervalMs: 60_000 } }],
      models: [{ name: 'm', targets: [{ backend: 'llama-internal-7', model: 'x' }] }],
      auth: { mode: 'keys', keys: [] },
      admin: { token, port: 0 },
    });
    cleanups.push(() => gateway.close());
    const anonymous = await fetch(`${gateway.url}/readyz`);
    expect(anonymous.status).toBe(200);
    const body = await anonymous.text();
    expect(JSON.parse(body)).toEqual({ status: 'ready' });
    expect(body).not.toContain('llama-internal-7');
    const wrong = await fetch(`${gateway.url}/readyz`, { headers: { authorization: 'Bearer not-the-token' } });
    expect(await wrong.json()).toEqual({ status: 'ready' });
    const operator = await fetch(`${gateway.url}/readyz`, { headers: { authorization: `Bearer ${token}` } });
    expect(await operator.json()).toMatchObject({ status: 'ready', backends: [{ id: 'llama-internal-7' }, { id: 'down-one' }] });
    const admin = await fetch(`${gateway.adminUrl}/readyz`);
    expect(await admin.json()).toMatchObject({ status: 'ready', backends: [{ id: 'llama-internal-7' }, { id: 'down-one' }] });
  });

  it('logs one line per request with id, model, backend, status, latency and tokens, and never the prompt or keys', async () => {
    const sim = await startSim({ flavor: 'vllm' });
    cleanups.push(() => sim.close());
    const gateway = await startTestGateway({ backends: [backendFor('v', sim)], models: [{ name: 'm', targets: [{ backend: 'v', model: 'Qwen/Qwen3-8B' }] }] });
    cleanups.push(() => gateway.close());
    const response = await post(`${gateway.baseURL}/chat/completions`, JSON.stringify({ model: 'm', messages: [{ role: 'user', content: secretPrompt }], max_tokens: 3 }), {
      'content-type': 'application/json',
      authorization: 'Bearer sk-very-secret',
      'x-request-id': 'log-test-1',
    });
    expect(response.status).toBe(200);
    await waitFor(() => gateway.logs.some((line) => line.includes('log-test-1')), 2_000, 'the log line');
    const line = JSON.parse(gateway.logs.find((entry) => entry.includes('log-test-1')) as string);
    expect(line).toMatchObject({ requestId: 'log-test-1', model: 'm', backend: 'v', status: 200, promptTokens: expect.any(Number), completionTokens: 3, msg: 'request completed' });
    expect(line.latencyMs).toBeGreaterThan(0);
    const all = gateway.logs.join('\n');
    expect(all).not.toContain(secretPrompt);
    expect(all).not.toContain('sk-very-secret');
    const completion = JSON.parse(response.text).choices[0].message.content as string;
    expect(all).not.toContain(completion);
  });

  it('exports request, token and latency metrics with bounded labels', async () => {
    const sim = await startSim({ flavor: 'vllm' });
    cleanups.push(() => sim.close());
    const gateway = await startTestGateway({ backends: [backendFor('v', sim)], models: [{ name: 'm', targets: [{ backend: 'v', model: 'Qwen/Qwen3-8B' }] }] });
    cleanups.push(() => gateway.close());
    await gateway.client().chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 });
    for await (const _chunk of await gateway.client().chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, stream: true })) {
      // drain: time to first token is measured on streamed answers
    }
    await post(`${gateway.baseURL}/chat/completions`, JSON.stringify({ model: 'attacker-chosen-name', messages: [{ role: 'user', content: 'hi' }] }));
    const text = await (await fetch(`${gateway.url}/metrics`)).text();
    expect(text).toMatch(/switchyard_requests_total\{model="m",backend="v",endpoint="chat",status_class="2xx",cache="bypass"\} 2/);
    expect(text).toMatch(/switchyard_tokens_total\{model="m",backend="v",type="completion"\} 8/);
    expect(text).toContain('switchyard_time_to_first_token_seconds_bucket');
    expect(text).toContain('switchyard_backend_up{backend="v"} 1');
    expect(text).not.toContain('attacker-chosen-name');
  });

  it('drains a stream in flight on shutdown, refuses new work, then closes', async () => {
    const sim = await startSim({ flavor: 'vllm', tokensPerSecond: 40 });
    cleanups.push(() => sim.close());
    const gateway = await startTestGateway({ backends: [backendFor('v', sim)], models: [{ name: 'm', targets: [{ backend: 'v', model: 'Qwen/Qwen3-8B' }] }] });
    const stream = await gateway.client().chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20, stream: true });
    const collected = (async () => {
      let finish: string | null | undefined;
      let chunks = 0;
      for await (const chunk of stream) {
        chunks++;
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      return { chunks, finish };
    })();
    await waitFor(() => sim.stats().running === 1, 2_000, 'the stream to start');
    const closed = gateway.close();
    await waitFor(() => gateway.app.switchyard.shuttingDown, 1_000, 'shutdown to begin');
    const ready = await fetch(`${gateway.url}/readyz`).catch(() => undefined);
    if (ready) expect(ready.status).toBe(503);
    const { chunks, finish } = await collected;
    expect(finish).toBe('length');
    expect(chunks).toBeGreaterThanOrEqual(20);
    await closed;
    await expect(fetch(`${gateway.url}/healthz`)).rejects.toThrow();
  });

  it('guards /admin with admin.token, and can move /admin and /metrics to their own listener', async () => {
    const sim = await startSim({ flavor: 'vllm' });
    cleanups.push(() => sim.close());
    const token = 'admin-token-0123456789';
    const gateway = await startTestGateway({
      backends: [backendFor('v', sim)],
      models: [{ name: 'm', targets: [{ backend: 'v', model: 'Qwen/Qwen3-8B' }] }],
      admin: { token, port: 0 },
    });
    cleanups.push(() => gateway.close());
    expect(gateway.adminUrl).toBeTruthy();
    expect((await fetch(`${gateway.url}/metrics`)).status).toBe(404);
    expect((await fetch(`${gateway.url}/admin/backends`)).status).toBe(404);
    expect((await fetch(`${gateway.adminUrl}/metrics`)).status).toBe(200);
    const denied = await fetch(`${gateway.adminUrl}/admin/backends`);
    expect(denied.status).toBe(401);
    expect(((await denied.json()) as { error: { code: string } }).error.code).toBe('invalid_admin_token');
    const allowed = await fetch(`${gateway.adminUrl}/admin/backends`, { headers: { authorization: `Bearer ${token}` } });
    expect(allowed.status).toBe(200);
  });
});
