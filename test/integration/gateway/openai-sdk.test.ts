/**
 * The official openai SDK, unchanged, against a real gateway in front of a
 * vLLM- and a llama.cpp-flavoured simulator.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { backendFor, startSim, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.ts';

let vllm: Simulator;
let llama: Simulator;
let reasoning: Simulator;
let gateway: TestGateway;

beforeAll(async () => {
  vllm = await startSim({ flavor: 'vllm' });
  llama = await startSim({ flavor: 'llamacpp' });
  reasoning = await startSim({ flavor: 'vllm', model: 'deepseek-ai/DeepSeek-R1', reasoning: true });
  gateway = await startTestGateway({
    backends: [backendFor('vllm', vllm), backendFor('llama', llama), backendFor('r1', reasoning)],
    models: [
      { name: 'chat-vllm', aliases: ['fast'], targets: [{ backend: 'vllm', model: 'Qwen/Qwen3-8B' }] },
      { name: 'chat-llama', targets: [{ backend: 'llama', model: 'qwen3-8b-q4' }] },
      { name: 'reasoner', targets: [{ backend: 'r1', model: 'deepseek-ai/DeepSeek-R1' }] },
      { name: 'embed', targets: [{ backend: 'llama', model: 'qwen3-8b-q4' }] },
    ],
  });
});

afterAll(async () => {
  await gateway?.close();
  await Promise.all([vllm, llama, reasoning].map((simulator) => simulator?.close()));
});

const messages = [{ role: 'user' as const, content: 'Tell me about switchyards.' }];

describe.each(['chat-vllm', 'chat-llama', 'fast'])('chat completions via %s', (model) => {
  it('answers non-streaming with the public model name and usage', async () => {
    const client = gateway.client();
    const { data, response } = await client.chat.completions.create({ model, messages, max_tokens: 12 }).withResponse();
    expect(data.object).toBe('chat.completion');
    expect(data.model).toBe(model);
    expect(data.choices[0]?.message.role).toBe('assistant');
    expect(data.choices[0]?.message.content?.length).toBeGreaterThan(0);
    expect(data.usage?.completion_tokens).toBe(12);
    expect(data.usage?.total_tokens).toBe((data.usage?.prompt_tokens ?? 0) + 12);
    expect(response.headers.get('x-request-id')).toBeTruthy();
    expect(response.headers.get('x-switchyard-backend')).toBeTruthy();
  });

  it('streams without a usage chunk when the client did not ask', async () => {
    const stream = await gateway.client().chat.completions.create({ model, messages, max_tokens: 8, stream: true });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(2);
    expect(chunks.every((chunk) => chunk.model === model)).toBe(true);
    expect(chunks.every((chunk) => chunk.choices.length > 0)).toBe(true);
    expect(chunks.some((chunk) => chunk.usage)).toBe(false);
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBeTruthy();
    const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
    expect(text.length).toBeGreaterThan(0);
  });

  it('streams the usage chunk when include_usage is set, and logs the tokens', async () => {
    const stream = await gateway.client().chat.completions.create({
      model,
      messages,
      max_tokens: 8,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const last = chunks.at(-1);
    expect(last?.choices).toEqual([]);
    expect(last?.usage?.completion_tokens).toBe(8);
  });
});

describe('body pass-through', () => {
  it('forwards everything but the model untouched and passes x-request-id', async () => {
    const client = gateway.client();
    const body = {
      model: 'fast',
      messages,
      seed: 7,
      n: 1,
      stop: ['\n\n'],
      logprobs: false,
      response_format: { type: 'json_object' as const },
      top_k: 20,
      guided_json: { type: 'object' },
      chat_template_kwargs: { enable_thinking: false },
    };
    const { response } = await client.chat.completions
      .create(body as Parameters<typeof client.chat.completions.create>[0] & { stream?: false }, { headers: { 'x-request-id': 'req-pass-1' } })
      .withResponse();
    expect(response.headers.get('x-request-id')).toBe('req-pass-1');
    const seen = vllm.stats().lastRequest;
    expect(seen?.headers['x-request-id']).toBe('req-pass-1');
    expect(seen?.headers.authorization).toBeUndefined();
    expect(seen?.body).toEqual({ ...body, model: 'Qwen/Qwen3-8B' });
  });
});

describe('tools and reasoning', () => {
  const tools = [
    {
      type: 'function' as const,
      function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
    },
  ];

  it('streams tool calls intact', async () => {
    const stream = await gateway.client().chat.completions.create({ model: 'chat-vllm', messages, tools, stream: true });
    let name = '';
    let args = '';
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      for (const call of chunk.choices[0]?.delta.tool_calls ?? []) {
        name += call.function?.name ?? '';
        args += call.function?.arguments ?? '';
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(name).toBe('get_weather');
    expect(() => JSON.parse(args)).not.toThrow();
    expect(finish).toBe('tool_calls');
  });

  it('returns assembled tool calls from llama.cpp (streamed upstream) for a non-streaming client', async () => {
    const answer = await gateway.client().chat.completions.create({ model: 'chat-llama', messages, tools });
    const call = answer.choices[0]?.message.tool_calls?.[0];
    expect(call?.type).toBe('function');
    expect(call?.type === 'function' && call.function.name).toBe('get_weather');
    expect(answer.choices[0]?.finish_reason).toBe('tool_calls');
    expect(answer.usage?.prompt_tokens).toBeGreaterThan(0);
    expect(llama.stats().lastRequest?.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });

  it('passes reasoning fields in messages and deltas', async () => {
    const answer = await gateway.client().chat.completions.create({ model: 'reasoner', messages, max_tokens: 20 });
    const message = answer.choices[0]?.message as unknown as Record<string, unknown>;
    expect(typeof (message.reasoning_content ?? message.reasoning)).toBe('string');
    const stream = await gateway.client().chat.completions.create({ model: 'reasoner', messages, max_tokens: 20, stream: true });
    let thought = '';
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta as unknown as Record<string, unknown> | undefined;
      thought += String(delta?.reasoning_content ?? delta?.reasoning ?? '');
    }
    expect(thought.length).toBeGreaterThan(0);
  });
});

describe('completions, embeddings, models', () => {
  it('serves /v1/completions, stream and non-stream', async () => {
    const client = gateway.client();
    const answer = await client.completions.create({ model: 'chat-vllm', prompt: 'Once upon a time', max_tokens: 6 });
    expect(answer.object).toBe('text_completion');
    expect(answer.model).toBe('chat-vllm');
    expect(answer.choices[0]?.text.length).toBeGreaterThan(0);
    expect(answer.usage?.completion_tokens).toBe(6);
    const llamaAnswer = await client.completions.create({ model: 'chat-llama', prompt: 'Once upon a time', max_tokens: 6 });
    expect(llamaAnswer.object).toBe('text_completion');
    expect(llamaAnswer.choices[0]?.text.length).toBeGreaterThan(0);
    const stream = await client.completions.create({ model: 'chat-llama', prompt: 'Once', max_tokens: 5, stream: true });
    let text = '';
    for await (const chunk of stream) {
      expect(chunk.model).toBe('chat-llama');
      text += chunk.choices[0]?.text ?? '';
    }
    expect(text.length).toBeGreaterThan(0);
  });

  it('serves embeddings in the SDK default (base64) and float formats', async () => {
    const client = gateway.client();
    const base64 = await client.embeddings.create({ model: 'embed', input: ['one', 'two'] });
    expect(base64.data).toHaveLength(2);
    expect(base64.model).toBe('embed');
    expect(base64.data[0]?.embedding.length).toBeGreaterThan(8);
    const float = await client.embeddings.create({ model: 'embed', input: 'one', encoding_format: 'float' });
    expect(float.data[0]?.embedding).toHaveLength(base64.data[0]?.embedding.length ?? 0);
    expect(float.data[0]?.embedding[0]).toBeCloseTo(base64.data[0]?.embedding[0] ?? NaN, 5);
  });

  it('lists public names and aliases, and retrieves one', async () => {
    const client = gateway.client();
    const ids = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toEqual(['chat-vllm', 'fast', 'chat-llama', 'reasoner', 'embed']);
    const one = await client.models.retrieve('fast');
    expect(one).toMatchObject({ id: 'fast', object: 'model' });
    await expect(client.models.retrieve('nope')).rejects.toMatchObject({ status: 404 });
  });
});

describe('client aborts', () => {
  it('cancels the upstream generation when the client aborts mid-stream', async () => {
    const slow = await startSim({ flavor: 'vllm', tokensPerSecond: 50 });
    const local = await startTestGateway({
      backends: [backendFor('slow', slow)],
      models: [{ name: 'slow', targets: [{ backend: 'slow', model: 'Qwen/Qwen3-8B' }] }],
    });
    try {
      const controller = new AbortController();
      const stream = await local.client().chat.completions.create({ model: 'slow', messages, max_tokens: 500, stream: true }, { signal: controller.signal });
      let received = 0;
      // The SDK ends iteration quietly (or throws an abort error) once its signal fires.
      await (async () => {
        for await (const _chunk of stream) {
          if (++received === 3) controller.abort();
        }
      })().catch((error: Error) => expect(error.name).toMatch(/Abort/));
      expect(received).toBeLessThan(10);
      await waitFor(() => slow.stats().cancelled === 1 && slow.stats().running === 0, 2_000, 'simulator to see the cancel');
      await waitFor(() => local.logs.some((line) => line.includes('"clientClosed":true')), 2_000, 'the request log line');
    } finally {
      await local.close();
      await slow.close();
    }
  });
});
