// Smoke test of the real-llama.cpp harness itself (needs `npm run e2e:setup`).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startLlamaServer, type LlamaServer } from './helpers/llama-server.ts';

describe('real llama-server harness', () => {
  let srv: LlamaServer;

  beforeAll(async () => {
    srv = await startLlamaServer({ slots: 2, ctx: 1024, alias: 'smoke' });
  });

  afterAll(async () => {
    await srv?.close();
  });

  it('is healthy and lists the alias', async () => {
    expect((await fetch(`${srv.url}/health`)).status).toBe(200);
    const models = (await (await fetch(`${srv.url}/v1/models`)).json()) as { data: Array<{ id: string; meta: { n_ctx: number } }> };
    expect(models.data[0]?.id).toBe('smoke');
    expect(models.data[0]?.meta.n_ctx).toBe(1024);
  });

  it('answers a chat completion, streamed and not', async () => {
    const body = { model: 'anything', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 };
    const res = await fetch(`${srv.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(200);
    const json = (await res.json()) as { model: string; usage: { completion_tokens: number } };
    expect(json.model).toBe('smoke');
    expect(json.usage.completion_tokens).toBe(5);

    const sres = await fetch(`${srv.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, stream: true }),
    });
    expect(sres.headers.get('content-type')).toContain('text/event-stream');
    expect((await sres.text()).trimEnd().endsWith('data: [DONE]')).toBe(true);
  });

  it('exposes /metrics and /slots', async () => {
    expect(await (await fetch(`${srv.url}/metrics`)).text()).toContain('llamacpp:requests_deferred');
    const slots = (await (await fetch(`${srv.url}/slots`)).json()) as unknown[];
    expect(slots).toHaveLength(2);
  });

  it('close() stops the process', async () => {
    const other = await startLlamaServer({ slots: 1, ctx: 256 });
    await other.close();
    expect(other.process.exitCode !== null || other.process.signalCode !== null).toBe(true);
    await expect(fetch(`${other.url}/health`)).rejects.toThrow();
  });
});
