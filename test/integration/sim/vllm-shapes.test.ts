import { describe, expect, it } from 'vitest';
import { chatBody, type Chunk, postJson, sseEvents, useSimulator } from './sim-helpers.ts';

describe('vLLM flavour: response and stream shapes', () => {
  it('answers a chat completion with vLLM fields and usage', async () => {
    const sim = await useSimulator({ flavor: 'vllm' });
    const response = await postJson(sim, '/v1/chat/completions', chatBody({ max_tokens: 5 }), { headers: { 'x-request-id': 'req-1' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.get('x-request-id')).toBe('req-1');
    const body = (await response.json()) as Record<string, any>;
    expect(body.id).toBe('chatcmpl-req-1');
    expect(body.object).toBe('chat.completion');
    expect(body.model).toBe('sim-model');
    expect(body.choices[0].message).toMatchObject({ role: 'assistant', reasoning: null, refusal: null });
    expect(body.choices[0].message.content.split(' ')).toHaveLength(5);
    expect(body.choices[0].finish_reason).toBe('length');
    expect(body.choices[0].stop_reason).toBeNull();
    expect(body.usage).toEqual({ prompt_tokens: expect.any(Number), completion_tokens: 5, total_tokens: body.usage.prompt_tokens + 5, prompt_tokens_details: null });
    expect(body).toHaveProperty('kv_transfer_params', null);
  });

  it('stops with "stop" after defaultMaxTokens when max_tokens is absent', async () => {
    const sim = await useSimulator({ flavor: 'vllm', defaultMaxTokens: 7 });
    const body = (await (await postJson(sim, '/v1/chat/completions', chatBody({ max_tokens: undefined }))).json()) as Record<string, any>;
    expect(body.choices[0].finish_reason).toBe('stop');
    expect(body.usage.completion_tokens).toBe(7);
  });

  it('streams role chunk, tokens with the finish on the last one, usage, [DONE]', async () => {
    const sim = await useSimulator({ flavor: 'vllm' });
    const response = await postJson(sim, '/v1/chat/completions', chatBody({ stream: true, stream_options: { include_usage: true } }));
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const events = sseEvents(await response.text());
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1) as Chunk[];
    expect(chunks[0]?.choices[0]?.delta).toEqual({ role: 'assistant', content: '' });
    const tokens = chunks.slice(1, 5);
    expect(tokens.map((chunk) => typeof chunk.choices[0]?.delta?.content)).toEqual(['string', 'string', 'string', 'string']);
    expect(tokens.slice(0, 3).every((chunk) => chunk.choices[0]?.finish_reason === null)).toBe(true);
    expect(tokens[3]?.choices[0]?.finish_reason).toBe('length');
    const usageChunk = chunks[5] as Chunk;
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage).toMatchObject({ completion_tokens: 4 });
    // Non-usage chunks omit the usage field altogether.
    expect(chunks.slice(0, 5).every((chunk) => !('usage' in chunk))).toBe(true);
  });

  it('includes usage once stream_options is present, and never without it', async () => {
    const sim = await useSimulator({ flavor: 'vllm' });
    const withOptions = sseEvents(await (await postJson(sim, '/v1/chat/completions', chatBody({ stream: true, stream_options: {} }))).text());
    expect(withOptions.some((event) => typeof event === 'object' && 'usage' in (event as object))).toBe(true);
    const without = sseEvents(await (await postJson(sim, '/v1/chat/completions', chatBody({ stream: true }))).text());
    expect(without.some((event) => typeof event === 'object' && 'usage' in (event as object))).toBe(false);
    const off = sseEvents(await (await postJson(sim, '/v1/chat/completions', chatBody({ stream: true, stream_options: { include_usage: false } }))).text());
    expect(off.some((event) => typeof event === 'object' && 'usage' in (event as object))).toBe(false);
  });

  it('streams text completions for each prompt of a list, side by side as the engine decodes them', async () => {
    const sim = await useSimulator({ flavor: 'vllm' });
    const text = await (await postJson(sim, '/v1/completions', { model: 'sim-model', prompt: ['one', 'two'], max_tokens: 2, stream: true })).text();
    const chunks = sseEvents(text).slice(0, -1) as Chunk[];
    // vLLM merges the prompts' generators, so their tokens interleave.
    expect(chunks.map((chunk) => chunk.choices[0]?.index)).toEqual([0, 1, 0, 1]);
    expect(chunks.map((chunk) => chunk.choices[0]?.finish_reason)).toEqual([null, null, 'length', 'length']);
  });

  it('sends stream headers at once, before the first token', async () => {
    const sim = await useSimulator({ flavor: 'vllm', ttftMs: 400 });
    const started = Date.now();
    const response = await postJson(sim, '/v1/chat/completions', chatBody({ stream: true }));
    expect(Date.now() - started).toBeLessThan(300);
    await response.text();
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
  });

  it('rejects like vLLM: unknown model, validation, context length, bad JSON', async () => {
    const sim = await useSimulator({ flavor: 'vllm', maxModelLen: 100 });
    const unknown = await postJson(sim, '/v1/chat/completions', chatBody({ model: 'other' }));
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({
      error: { message: 'The model `other` does not exist.', type: 'NotFoundError', param: 'model', code: 404 },
    });

    const missing = await postJson(sim, '/v1/chat/completions', { model: 'sim-model' });
    expect(missing.status).toBe(400);
    const missingBody = (await missing.json()) as Record<string, any>;
    expect(missingBody.error).toMatchObject({ type: 'Bad Request', param: 'body.messages', code: 400 });
    expect(missingBody.error.message).toContain('Field required');

    const tooLong = await postJson(sim, '/v1/chat/completions', chatBody({ messages: [{ role: 'user', content: 'x'.repeat(800) }] }));
    expect(tooLong.status).toBe(400);
    const tooLongBody = (await tooLong.json()) as Record<string, any>;
    expect(tooLongBody.error.message).toMatch(/^This model's maximum context length is 100 tokens\. However, your request has \d+ input tokens/);
    expect(tooLongBody.error).toMatchObject({ type: 'BadRequestError', param: 'input_tokens', code: 400 });

    const tooMany = await postJson(sim, '/v1/chat/completions', chatBody({ max_tokens: 95 }));
    const tooManyBody = (await tooMany.json()) as Record<string, any>;
    expect(tooMany.status).toBe(400);
    expect(tooManyBody.error.param).toBe('max_tokens');
    expect(tooManyBody.error.message).toContain("This model's maximum context length is 100 tokens");

    const badJson = await postJson(sim, '/v1/chat/completions', '{"messages": [');
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as Record<string, any>).error.type).toBe('Bad Request');
    expect(sim.stats().failed).toBe(5);
    expect(sim.stats().lastRequest?.body).toBe('{"messages": [');
  });

  it('guards only /v1 paths with the API key and answers 401 {"error":"Unauthorized"}', async () => {
    const sim = await useSimulator({ flavor: 'vllm', apiKey: 'secret' });
    const denied = await postJson(sim, '/v1/chat/completions', chatBody());
    expect(denied.status).toBe(401);
    expect(await denied.json()).toEqual({ error: 'Unauthorized' });
    expect((await fetch(`${sim.url}/v1/models`)).status).toBe(401);
    const allowed = await postJson(sim, '/v1/chat/completions', chatBody(), { headers: { authorization: 'bearer secret' } });
    expect(allowed.status).toBe(200);
    expect((await fetch(`${sim.url}/health`)).status).toBe(200);
    expect((await fetch(`${sim.url}/metrics`)).status).toBe(200);
  });

  it('serves health, ping, version, models and 404s like vLLM', async () => {
    const sim = await useSimulator({ flavor: 'vllm', maxModelLen: 4096 });
    const health = await fetch(`${sim.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe('');
    expect((await fetch(`${sim.url}/ping`)).status).toBe(200);
    expect(((await (await fetch(`${sim.url}/version`)).json()) as Record<string, string>).version).toMatch(/^\d+\.\d+/);
    const models = (await (await fetch(`${sim.url}/v1/models`)).json()) as Record<string, any>;
    expect(models.object).toBe('list');
    expect(models.data[0]).toMatchObject({ id: 'sim-model', object: 'model', owned_by: 'vllm', root: 'sim-model', parent: null, max_model_len: 4096 });
    const missing = await fetch(`${sim.url}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ detail: 'Not Found' });
    expect((await fetch(`${sim.url}/v1/chat/completions`)).status).toBe(405);
  });

  it('reports load in the endpoint-load-metrics header when asked', async () => {
    const sim = await useSimulator({ flavor: 'vllm' });
    const text = await postJson(sim, '/v1/chat/completions', chatBody(), { headers: { 'endpoint-load-metrics-format': 'TEXT' } });
    expect(text.headers.get('endpoint-load-metrics')).toMatch(/^TEXT named_metrics\.kv_cache_usage_perc=[\d.]+, named_metrics\.num_requests_waiting=0\.0$/);
    const json = await postJson(sim, '/v1/chat/completions', chatBody(), { headers: { 'endpoint-load-metrics-format': 'JSON' } });
    const report = json.headers.get('endpoint-load-metrics') ?? '';
    expect(JSON.parse(report.slice(5))).toHaveProperty('named_metrics.num_requests_waiting', 0);
  });
});
