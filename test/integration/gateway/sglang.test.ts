/**
 * The `sglang` backend kind end to end: a gateway in front of an SGLang-flavoured
 * simulator (API key set, metrics on) probes its health without the key,
 * discovers the model and its context window with it, scrapes SGLang's gauges,
 * and serves chat, streams and completions in the OpenAI shape. The first block
 * pins the simulator's SGLang shapes the gateway relies on.
 */
import { describe, expect, it } from 'vitest';
import { backendFor, closedAfterEach, post, waitFor, type TestGateway } from '../../helpers/gateway.ts';
import { sseEvents } from '../../helpers/sse.ts';

const MODEL = 'Qwen/Qwen2.5-7B-Instruct';
const KEY = 'sglang-secret';
const { sim: startSim, gateway: startGateway } = closedAfterEach();

function sglang(options: Record<string, unknown> = {}) {
  return startSim({ flavor: 'sglang', model: MODEL, apiKey: KEY, maxModelLen: 4096, ...options });
}

interface AdminBackend {
  id: string;
  kind: string;
  health: string;
  load: { runtimeQueued: number | null; runtimeRunning: number | null; kvCacheUsage: number | null; scrapeAgeMs: number | null; scrapeError: string | null };
  models: Record<string, { contextLength: number | null }>;
}

async function adminBackend(gateway: TestGateway, id: string): Promise<AdminBackend | undefined> {
  const admin = (await (await fetch(`${gateway.url}/admin/backends`)).json()) as { backends: AdminBackend[] };
  return admin.backends.find((backend) => backend.id === id);
}

describe('SGLang simulator shapes', () => {
  it('health, models, auth exemptions and flat errors as SGLang answers them', async () => {
    const sim = await sglang();
    const health = await fetch(`${sim.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe('');
    expect(health.headers.get('content-type')).toBeNull();
    // /metrics is exempt from the key too; everything else needs exactly "Bearer <key>".
    expect((await fetch(`${sim.url}/metrics`)).status).toBe(200);
    expect((await fetch(`${sim.url}/v1/models`)).status).toBe(401);
    expect(await (await fetch(`${sim.url}/v1/models`, { headers: { authorization: `bearer ${KEY}` } })).json()).toEqual({ error: 'Unauthorized' });
    const models = (await (await fetch(`${sim.url}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as { data: Array<Record<string, unknown>> };
    expect(models.data).toEqual([{ id: MODEL, object: 'model', created: expect.any(Number), owned_by: 'sglang', root: MODEL, parent: null, max_model_len: 4096 }]);

    const headers = { 'content-type': 'application/json', authorization: `Bearer ${KEY}` };
    const tooLong = { model: MODEL, messages: [{ role: 'user', content: 'x'.repeat(20_000) }] };
    const plain = await post(`${sim.url}/v1/chat/completions`, JSON.stringify(tooLong), headers);
    expect(plain.status).toBe(400);
    expect(plain.json).toEqual({
      object: 'error',
      message: expect.stringMatching(/^The input \(\d+ tokens\) is longer than the model's context length \(4096 tokens\)\.$/),
      type: 'BadRequestError',
      param: null,
      code: 400,
    });
    // A stream has sent its headers before the context check runs: the error is an event, then [DONE].
    const streamed = await post(`${sim.url}/v1/chat/completions`, JSON.stringify({ ...tooLong, stream: true }), headers);
    expect(streamed.status).toBe(200);
    expect(streamed.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(streamed.text).toMatch(/^data: \{"error": \{"object": "error", "message": "The input/);
    expect(sseEvents(streamed.text)).toEqual([{ error: { object: 'error', message: expect.any(String), type: 'BadRequestError', param: null, code: 400 } }, '[DONE]']);

    const metricsOff = await sglang({ metrics: false });
    expect((await fetch(`${metricsOff.url}/metrics`)).status).toBe(404);
  });
});

describe('sglang backend kind through the gateway', () => {
  it('probes health without the key and discovers the model and its context window with it', async () => {
    const sim = await sglang();
    const gateway = await startGateway({
      backends: [backendFor('sg', sim, { apiKey: KEY, health: { intervalMs: 100 } })],
      models: [{ name: 'chat', targets: [{ backend: 'sg', model: MODEL }] }],
    });
    const backend = await adminBackend(gateway, 'sg');
    expect(backend).toMatchObject({ kind: 'sglang', health: 'up', models: { [MODEL]: { contextLength: 4096 } } });
    expect(backend?.load.scrapeError).toBeNull();

    // While the server is down the probe fails and the backend leaves rotation; it comes back with the server.
    sim.setLoading(true);
    await waitFor(async () => (await adminBackend(gateway, 'sg'))?.health !== 'up', 5_000, 'the probe to see the server gone');
    const refused = await post(`${gateway.baseURL}/chat/completions`, JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] }));
    expect(refused.status).toBe(503);
    sim.setLoading(false);
    await waitFor(async () => (await adminBackend(gateway, 'sg'))?.health === 'up', 5_000, 'the probe to see the server back');
  });

  it("scrapes SGLang's running and queued requests and KV-cache use from /metrics", async () => {
    const sim = await sglang({ maxConcurrency: 2, ttftMs: 2_000, kvCacheTokens: 1_000 });
    const gateway = await startGateway({
      backends: [backendFor('sg', sim, { apiKey: KEY, scrape: { intervalMs: 50, staleAfterMs: 1_000 } })],
      models: [{ name: 'chat', targets: [{ backend: 'sg', model: MODEL }] }],
    });
    // Load the server directly (another tenant of the machine): two running, three queued.
    const controller = new AbortController();
    const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'a prompt of some length '.repeat(10) }], max_tokens: 5 });
    const direct = Array.from({ length: 5 }, () =>
      fetch(`${sim.url}/v1/chat/completions`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
        signal: controller.signal,
      }).catch(() => undefined),
    );
    try {
      await waitFor(
        async () => {
          const load = (await adminBackend(gateway, 'sg'))?.load;
          return load?.runtimeRunning === 2 && load.runtimeQueued === 3;
        },
        5_000,
        'the scraped running and queued counts',
      );
      const load = (await adminBackend(gateway, 'sg'))?.load;
      // Two running prompts of about 70 tokens each in a 1,000-token pool.
      expect(load?.kvCacheUsage).toBeGreaterThan(0.05);
      expect(load?.kvCacheUsage).toBeLessThan(0.5);
    } finally {
      controller.abort();
      await Promise.all(direct);
    }
  });

  it('serves chat, a stream with usage and a completion in the OpenAI shape, with the public model name', async () => {
    const sim = await sglang({ ttftMs: 5, tokensPerSecond: 0 });
    const gateway = await startGateway({
      backends: [backendFor('sg', sim, { apiKey: KEY })],
      models: [{ name: 'chat', targets: [{ backend: 'sg', model: MODEL }] }],
    });
    const client = gateway.client();
    const answer = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Say something.' }], max_tokens: 6 });
    expect(answer.model).toBe('chat');
    expect(answer.choices[0]?.message.content).toEqual(expect.any(String));
    expect(answer.choices[0]?.finish_reason).toBe('length');
    expect(answer.usage).toMatchObject({ completion_tokens: 6, prompt_tokens: expect.any(Number) });
    // The runtime saw its own model id and the gateway's key.
    expect(sim.stats().lastRequest?.headers.authorization).toBe(`Bearer ${KEY}`);
    expect((sim.stats().lastRequest?.body as { model: string } | undefined)?.model).toBe(MODEL);

    const stream = await client.chat.completions.create({
      model: 'chat',
      messages: [{ role: 'user', content: 'Count.' }],
      max_tokens: 5,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: unknown;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      expect(chunk.model).toBe('chat');
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text.length).toBeGreaterThan(0);
    expect(finish).toBe('length');
    expect(usage).toMatchObject({ completion_tokens: 5 });

    // A stream without include_usage: the client sees no usage chunk, the gateway still counts the tokens.
    const raw = await post(`${gateway.baseURL}/chat/completions`, JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'Hi.' }], max_tokens: 3, stream: true }));
    const events = sseEvents(raw.text);
    expect(events.at(-1)).toBe('[DONE]');
    expect(events.some((event) => typeof event === 'object' && event !== null && 'usage' in event && (event as { usage: unknown }).usage !== null)).toBe(false);

    const completion = await client.completions.create({ model: 'chat', prompt: 'Once upon a time', max_tokens: 4 });
    expect(completion.model).toBe('chat');
    expect(completion.choices[0]?.text).toEqual(expect.any(String));
    expect(completion.usage?.completion_tokens).toBe(4);
  });

  it('translates Responses requests onto its chat completions (its own /v1/responses is not used by default)', async () => {
    const sim = await sglang();
    const gateway = await startGateway({
      backends: [backendFor('sg', sim, { apiKey: KEY })],
      models: [{ name: 'chat', targets: [{ backend: 'sg', model: MODEL }] }],
    });
    const { data, response } = await gateway.client().responses.create({ model: 'chat', input: 'Say hello.', max_output_tokens: 5 }).withResponse();
    expect(response.headers.get('x-switchyard-translated')).toBe('responses->chat');
    expect(data).toMatchObject({ object: 'response', model: 'chat', status: 'incomplete', usage: { output_tokens: 5 } });
    expect(data.output_text.length).toBeGreaterThan(0);
    expect(sim.stats().lastRequest?.path).toBe('/v1/chat/completions');
  });

  it("relays SGLang's flat error bodies in the OpenAI shape", async () => {
    const sim = await sglang();
    const gateway = await startGateway({
      backends: [backendFor('sg', sim, { apiKey: KEY })],
      models: [{ name: 'chat', targets: [{ backend: 'sg', model: MODEL }] }],
    });
    const response = await post(`${gateway.baseURL}/chat/completions`, JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 0 }));
    expect(response.status).toBe(400);
    expect(response.json.error).toMatchObject({ type: 'invalid_request_error', message: expect.stringContaining('max_tokens must be positive') });
  });
});
