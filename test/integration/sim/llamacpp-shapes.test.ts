import { describe, expect, it } from 'vitest';
import { chatBody, type Chunk, postJson, sseEvents, useSimulator } from './sim-helpers.ts';

describe('llama.cpp flavour: response and stream shapes', () => {
  it('answers with the server alias, usage with cached tokens and timings', async () => {
    const sim = await useSimulator({ flavor: 'llamacpp', model: 'qwen-alias' });
    const response = await postJson(sim, '/v1/chat/completions', chatBody({ model: 'whatever-the-client-says', max_tokens: 3 }));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(response.headers.get('server')).toBe('llama.cpp');
    const body = (await response.json()) as Record<string, any>;
    expect(body.model).toBe('qwen-alias');
    expect(body.object).toBe('chat.completion');
    expect(body.id).toMatch(/^chatcmpl-[0-9A-Za-z]{32}$/);
    expect(body.choices[0]).toMatchObject({ finish_reason: 'length', index: 0, message: { role: 'assistant' } });
    expect(body.usage).toMatchObject({ completion_tokens: 3, prompt_tokens_details: { cached_tokens: 0 } });
    expect(Object.keys(body.timings)).toEqual([
      'cache_n',
      'prompt_n',
      'prompt_ms',
      'prompt_per_token_ms',
      'prompt_per_second',
      'predicted_n',
      'predicted_ms',
      'predicted_per_token_ms',
      'predicted_per_second',
    ]);
    // The same conversation again hits the prefix cache.
    const again = (await (await postJson(sim, '/v1/chat/completions', chatBody({ max_tokens: 3 }))).json()) as Record<string, any>;
    expect(again.usage.prompt_tokens_details.cached_tokens).toBeGreaterThan(0);
    expect(again.timings.cache_n).toBe(again.usage.prompt_tokens_details.cached_tokens);
  });

  it('streams role (content null), tokens, an empty-delta finish with timings, then [DONE]', async () => {
    const sim = await useSimulator({ flavor: 'llamacpp' });
    const response = await postJson(sim, '/v1/chat/completions', chatBody({ stream: true }));
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const events = sseEvents(await response.text());
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1) as Chunk[];
    expect(chunks[0]?.choices[0]?.delta).toEqual({ role: 'assistant', content: null });
    expect(chunks.slice(1, 5).every((chunk) => typeof chunk.choices[0]?.delta?.content === 'string')).toBe(true);
    const finish = chunks[5] as Chunk;
    expect(finish.choices[0]).toEqual({ finish_reason: 'length', index: 0, delta: {} });
    expect(finish.timings?.predicted_n).toBe(4);
    expect(chunks).toHaveLength(6);
    expect(chunks.every((chunk) => !('usage' in chunk))).toBe(true);
  });

  it('adds a usage chunk only when include_usage is true', async () => {
    const sim = await useSimulator({ flavor: 'llamacpp' });
    const present = sseEvents(await (await postJson(sim, '/v1/chat/completions', chatBody({ stream: true, stream_options: {} }))).text());
    expect(present.some((event) => typeof event === 'object' && 'usage' in (event as object))).toBe(false);
    const events = sseEvents(await (await postJson(sim, '/v1/chat/completions', chatBody({ stream: true, stream_options: { include_usage: true } }))).text());
    const usageChunk = events.at(-2) as Chunk;
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage).toMatchObject({ completion_tokens: 4, prompt_tokens_details: { cached_tokens: expect.any(Number) } });
    // Timings move to the last chunk, which is now the usage chunk.
    expect(usageChunk.timings).toBeDefined();
    expect((events.at(-3) as Chunk).timings).toBeUndefined();
  });

  it('ends a completions stream with a final chunk carrying usage and timings', async () => {
    const sim = await useSimulator({ flavor: 'llamacpp' });
    const events = sseEvents(await (await postJson(sim, '/v1/completions', { prompt: 'Once', max_tokens: 2, stream: true })).text());
    const chunks = events.slice(0, -1) as Chunk[];
    expect(chunks).toHaveLength(3);
    expect(chunks[2]?.choices[0]).toMatchObject({ text: '', finish_reason: 'length' });
    expect(chunks[2]?.usage).toMatchObject({ completion_tokens: 2 });
  });

  it('sends headers only with the first token, so an early error is plain JSON', async () => {
    const sim = await useSimulator({ flavor: 'llamacpp', ttftMs: 300, maxModelLen: 64 });
    const started = Date.now();
    const response = await postJson(sim, '/v1/chat/completions', chatBody({ stream: true }));
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    await response.text();

    const tooLong = await postJson(sim, '/v1/chat/completions', chatBody({ stream: true, messages: [{ role: 'user', content: 'y'.repeat(400) }] }));
    expect(tooLong.status).toBe(400);
    expect(tooLong.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const body = (await tooLong.json()) as Record<string, any>;
    expect(body.error).toMatchObject({ code: 400, type: 'exceed_context_size_error', n_ctx: 64 });
    expect(body.error.message).toBe(`request (${body.error.n_prompt_tokens} tokens) exceeds the available context size (64 tokens), try increasing it`);
  });

  it('cuts generation at the context end instead of failing on a large max_tokens', async () => {
    const sim = await useSimulator({ flavor: 'llamacpp', maxModelLen: 40 });
    const body = (await (await postJson(sim, '/v1/chat/completions', chatBody({ max_tokens: 1000 }))).json()) as Record<string, any>;
    expect(body.choices[0].finish_reason).toBe('length');
    // The recorded server fills the slot exactly: prompt + completion = n_ctx.
    expect(body.usage.prompt_tokens + body.usage.completion_tokens).toBe(40);
  });

  it('rejects like llama-server: malformed JSON 500, missing messages 400', async () => {
    const sim = await useSimulator({ flavor: 'llamacpp' });
    const bad = await postJson(sim, '/v1/chat/completions', 'not json');
    expect(bad.status).toBe(500);
    expect(((await bad.json()) as Record<string, any>).error).toMatchObject({ code: 500, type: 'server_error' });
    const missing = await postJson(sim, '/v1/chat/completions', { model: 'x' });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toEqual({ error: { code: 400, message: "'messages' is required", type: 'invalid_request_error' } });
    const notFound = await fetch(`${sim.url}/v2/nothing`);
    expect(notFound.status).toBe(404);
    expect(await notFound.json()).toEqual({ error: { message: 'File Not Found', type: 'not_found_error', code: 404 } });
  });

  it('checks Bearer or X-Api-Key everywhere but /health', async () => {
    const sim = await useSimulator({ flavor: 'llamacpp', apiKey: 'k1' });
    const denied = await postJson(sim, '/v1/chat/completions', chatBody());
    expect(denied.status).toBe(401);
    expect(await denied.json()).toEqual({ error: { message: 'Invalid API Key', type: 'authentication_error', code: 401 } });
    expect((await fetch(`${sim.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${sim.url}/health`)).status).toBe(200);
    expect((await fetch(`${sim.url}/v1/models`)).status).toBe(401);
    expect((await postJson(sim, '/v1/chat/completions', chatBody(), { headers: { authorization: 'Bearer k1' } })).status).toBe(200);
    expect((await postJson(sim, '/v1/chat/completions', chatBody(), { headers: { 'x-api-key': 'k1' } })).status).toBe(200);
  });

  it('answers 503 Loading model everywhere while loading', async () => {
    const sim = await useSimulator({ flavor: 'llamacpp', loadingMs: 10_000 });
    const health = await fetch(`${sim.url}/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toEqual({ error: { message: 'Loading model', type: 'unavailable_error', code: 503 } });
    expect((await postJson(sim, '/v1/chat/completions', chatBody())).status).toBe(503);
    sim.setLoading(false);
    const ready = await fetch(`${sim.url}/health`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ok' });
  });

  it('serves /v1/models, /props and /slots; /metrics is 501 without metrics', async () => {
    const sim = await useSimulator({ flavor: 'llamacpp', metrics: false, maxConcurrency: 2, maxModelLen: 2048 });
    const models = (await (await fetch(`${sim.url}/v1/models`)).json()) as Record<string, any>;
    expect(models.data[0]).toMatchObject({ id: 'sim-model', object: 'model', owned_by: 'llamacpp', meta: { n_ctx: 2048 } });
    expect(models.data[0].meta).toHaveProperty('n_ctx_train');
    expect(models.data[0].meta).toHaveProperty('n_params');
    const props = (await (await fetch(`${sim.url}/props`)).json()) as Record<string, any>;
    expect(props.total_slots).toBe(2);
    const slots = (await (await fetch(`${sim.url}/slots`)).json()) as Array<Record<string, unknown>>;
    expect(slots.map((slot) => [slot.id, slot.is_processing])).toEqual([
      [0, false],
      [1, false],
    ]);
    const metrics = await fetch(`${sim.url}/metrics`);
    expect(metrics.status).toBe(501);
    expect(((await metrics.json()) as Record<string, any>).error.type).toBe('not_supported_error');
  });
});
