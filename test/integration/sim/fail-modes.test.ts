import { describe, expect, it } from 'vitest';
import { chatBody, eventually, postJson, readUntil, useSimulator } from './sim-helpers.ts';

describe('simulator fail modes, loading and determinism', () => {
  it('fails with runtime-shaped 500 and 429 bodies', async () => {
    const vllm = await useSimulator({ flavor: 'vllm', failRate: 1 });
    const server = await postJson(vllm, '/v1/chat/completions', chatBody());
    expect(server.status).toBe(500);
    expect(((await server.json()) as Record<string, any>).error).toMatchObject({ type: 'InternalServerError', code: 500, param: null });
    vllm.update({ failMode: '429' });
    expect((await postJson(vllm, '/v1/chat/completions', chatBody())).status).toBe(429);
    expect(vllm.stats()).toMatchObject({ requests: 2, failed: 2, completed: 0 });

    const llama = await useSimulator({ flavor: 'llamacpp', failRate: 1 });
    const failed = await postJson(llama, '/v1/chat/completions', chatBody({ stream: true }));
    expect(failed.status).toBe(500);
    expect(await failed.json()).toEqual({ error: { code: 500, message: expect.any(String), type: 'server_error' } });
  });

  it('resets the connection without an answer', async () => {
    const sim = await useSimulator({ flavor: 'vllm', failRate: 1, failMode: 'reset' });
    await expect(postJson(sim, '/v1/chat/completions', chatBody())).rejects.toThrow();
    expect(sim.stats().failed).toBe(1);
  });

  it('hangs without holding a slot until the client gives up', async () => {
    const sim = await useSimulator({ flavor: 'llamacpp', failRate: 1, failMode: 'hang', maxConcurrency: 1 });
    await expect(postJson(sim, '/v1/chat/completions', chatBody(), { signal: AbortSignal.timeout(150) })).rejects.toThrow();
    expect(sim.stats().running).toBe(0);
    await eventually(() => sim.stats().cancelled === 1);
    expect(sim.stats().failed).toBe(1);
  });

  it('dies mid-stream: some chunks, then the socket closes without [DONE]', async () => {
    const sim = await useSimulator({ flavor: 'vllm', failRate: 1, failMode: 'die-mid-stream' });
    const response = await postJson(sim, '/v1/chat/completions', chatBody({ stream: true, max_tokens: 10 }));
    expect(response.status).toBe(200);
    let received = '';
    await expect(
      readUntil(response, (text) => {
        received = text;
        return false;
      }),
    ).rejects.toThrow();
    expect(received).toContain('"role":"assistant"');
    expect(received).not.toContain('[DONE]');
    await eventually(() => sim.stats().running === 0);
    expect(sim.stats()).toMatchObject({ failed: 1, completed: 0 });
  });

  it('dies mid-body for a non-streamed answer', async () => {
    const sim = await useSimulator({ flavor: 'llamacpp', failRate: 1, failMode: 'die-mid-stream' });
    const response = await postJson(sim, '/v1/chat/completions', chatBody());
    expect(response.status).toBe(200);
    await expect(response.text()).rejects.toThrow();
    expect(sim.stats().failed).toBe(1);
  });

  it('draws failures from a PRNG seeded by options.seed', async () => {
    const outcomes = async (seed: number): Promise<number[]> => {
      const sim = await useSimulator({ flavor: 'vllm', failRate: 0.5, seed });
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) statuses.push((await postJson(sim, '/v1/chat/completions', chatBody())).status);
      return statuses;
    };
    const first = await outcomes(7);
    expect(await outcomes(7)).toEqual(first);
    expect(first).toContain(500);
    expect(first).toContain(200);
  });

  it('refuses connections while a vLLM is loading, then serves', async () => {
    const sim = await useSimulator({ flavor: 'vllm', loadingMs: 10_000 });
    await expect(fetch(`${sim.url}/health`)).rejects.toThrow();
    sim.setLoading(false);
    expect((await fetch(`${sim.url}/health`)).status).toBe(200);
    sim.update({ loadingMs: 100 });
    await expect(fetch(`${sim.url}/health`)).rejects.toThrow();
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect((await fetch(`${sim.url}/health`)).status).toBe(200);
  });

  it('answers deterministically for a prompt and seed', async () => {
    const sim = await useSimulator({ flavor: 'vllm', seed: 3 });
    const content = async (extra: Record<string, unknown>): Promise<string> => {
      const body = (await (await postJson(sim, '/v1/chat/completions', chatBody({ max_tokens: 8, ...extra }))).json()) as Record<string, any>;
      return body.choices[0].message.content as string;
    };
    const base = await content({});
    expect(await content({})).toBe(base);
    expect(await content({ seed: 99 })).not.toBe(base);
    expect(await content({ messages: [{ role: 'user', content: 'Something else entirely.' }] })).not.toBe(base);
    const other = await useSimulator({ flavor: 'llamacpp', seed: 3 });
    const llama = (await (await postJson(other, '/v1/chat/completions', chatBody({ max_tokens: 8 }))).json()) as Record<string, any>;
    expect(llama.choices[0].message.content).toBe(base);
  });

  it('records the last inference request for assertions on what a gateway forwarded', async () => {
    const sim = await useSimulator({ flavor: 'vllm' });
    await postJson(sim, '/v1/chat/completions', chatBody({ user: 'u1' }), { headers: { 'x-tenant': 'blue' } });
    await fetch(`${sim.url}/metrics`);
    const last = sim.stats().lastRequest;
    expect(last?.path).toBe('/v1/chat/completions');
    expect(last?.headers['x-tenant']).toBe('blue');
    expect(last?.body).toMatchObject({ user: 'u1', max_tokens: 4 });
  });
});
