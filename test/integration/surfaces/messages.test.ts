/**
 * POST /v1/messages and /v1/messages/count_tokens through the surface seam,
 * with the official @anthropic-ai/sdk unchanged: passed through to runtimes
 * that serve Messages (llama.cpp and vLLM simulators) and translated onto chat
 * completions (the same simulators forced with `surfaces: {messages:
 * translate}`). Equivalent answers in both modes; every refusal in
 * Anthropic's error shape; keys from `x-api-key`.
 */
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../../src/limits/api-keys.ts';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { backendFor, post, startSim, startTestGateway, type TestGateway } from '../../helpers/gateway.ts';

let vllm: Simulator;
let llama: Simulator;
let gateway: TestGateway;
const key = generateApiKey();
const limited = generateApiKey();

beforeAll(async () => {
  vllm = await startSim({ flavor: 'vllm' });
  llama = await startSim({ flavor: 'llamacpp' });
  gateway = await startTestGateway({
    backends: [
      backendFor('vllm', vllm),
      { ...backendFor('vllm-translated', vllm), surfaces: { messages: 'translate' } },
      backendFor('llama', llama),
      { ...backendFor('llama-translated', llama), surfaces: { messages: 'translate' } },
    ],
    models: [
      { name: 'native-vllm', targets: [{ backend: 'vllm', model: 'Qwen/Qwen3-8B' }] },
      { name: 'translated-vllm', targets: [{ backend: 'vllm-translated', model: 'Qwen/Qwen3-8B' }] },
      { name: 'native-llama', targets: [{ backend: 'llama', model: 'qwen3-8b-q4' }] },
      { name: 'translated-llama', targets: [{ backend: 'llama-translated', model: 'qwen3-8b-q4' }] },
    ],
    auth: {
      mode: 'keys',
      keys: [
        { id: 'claude', hash: key.hash, models: ['native-*', 'translated-*'] },
        { id: 'limited', hash: limited.hash, tpm: 20 },
      ],
    },
  });
});

afterAll(async () => {
  await gateway?.close();
  await Promise.all([vllm, llama].map((simulator) => simulator?.close()));
});

const anthropic = (apiKey = key.secret) => new Anthropic({ baseURL: gateway.url, apiKey, maxRetries: 0 });

const weatherTool = {
  name: 'get_weather',
  description: 'The weather in a city',
  input_schema: { type: 'object' as const, properties: { city: { type: 'string' } }, required: ['city'] },
};

const modes = [
  { model: 'native-vllm', translated: null },
  { model: 'translated-vllm', translated: 'messages->chat' },
  { model: 'native-llama', translated: null },
  { model: 'translated-llama', translated: 'messages->chat' },
] as const;

describe.each(modes)('messages via $model', ({ model, translated }) => {
  it('messages.create answers with text blocks, a stop reason and usage', async () => {
    const { data, response } = await anthropic()
      .messages.create({ model, max_tokens: 12, system: 'Be brief.', messages: [{ role: 'user', content: 'Say hello in five words.' }] })
      .withResponse();
    expect(response.headers.get('x-switchyard-translated')).toBe(translated);
    expect(data.type).toBe('message');
    expect(data.role).toBe('assistant');
    expect(data.model).toBe(model);
    expect(data.content[0]?.type).toBe('text');
    expect(data.stop_reason).toBe('max_tokens');
    expect(data.usage.output_tokens).toBe(12);
    expect(data.usage.input_tokens + (data.usage.cache_read_input_tokens ?? 0)).toBeGreaterThan(0);
  });

  it('messages.stream delivers the events the SDK accumulates', async () => {
    const stream = anthropic().messages.stream({ model, max_tokens: 8, messages: [{ role: 'user', content: 'Say hello.' }] });
    const types: string[] = [];
    let text = '';
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
    }
    const final = await stream.finalMessage();
    expect(types[0]).toBe('message_start');
    expect(types).toContain('content_block_start');
    expect(types).toContain('content_block_stop');
    expect(types).toContain('message_delta');
    expect(types.at(-1)).toBe('message_stop');
    expect(final.content[0]?.type === 'text' ? final.content[0].text : undefined).toBe(text);
    expect(final.model).toBe(model);
    expect(final.usage.output_tokens).toBe(8);
    expect(final.stop_reason).toBe('max_tokens');
  });

  it('completes a tools round trip: tool_use, its tool_result, then text', async () => {
    const client = anthropic();
    const question = { role: 'user' as const, content: 'What is the weather in Paris?' };
    const first = await client.messages.create({ model, max_tokens: 64, messages: [question], tools: [weatherTool], tool_choice: { type: 'any' } });
    const use = first.content.find((block) => block.type === 'tool_use');
    expect(use).toBeDefined();
    if (use?.type !== 'tool_use') return;
    expect(first.stop_reason).toBe('tool_use');
    expect(use.name).toBe('get_weather');
    expect(typeof use.input).toBe('object');
    const second = await client.messages.create({
      model,
      max_tokens: 10,
      tools: [weatherTool],
      messages: [question, { role: 'assistant', content: first.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '21 degrees' }] }],
    });
    expect(second.content.some((block) => block.type === 'tool_use')).toBe(false);
    expect(second.content[0]?.type).toBe('text');
  });

  it('messages.countTokens counts the prompt', async () => {
    const { data, response } = await anthropic()
      .messages.countTokens({ model, system: 'Be brief.', messages: [{ role: 'user', content: 'Say hello in five words.' }] })
      .withResponse();
    expect(data.input_tokens).toBeGreaterThan(0);
    expect(response.headers.get('x-switchyard-translated')).toBe(translated ? 'count_tokens->estimate' : null);
  });
});

describe('messages: native and translated answers are equivalent', () => {
  it.each(['vllm', 'llama'])('the same request gives the same text and usage natively and translated (%s)', async (flavor) => {
    const request = { max_tokens: 10, system: 'Be brief.', messages: [{ role: 'user' as const, content: 'Describe a switchyard.' }], temperature: 0.5 };
    const native = await anthropic().messages.create({ model: `native-${flavor}`, ...request });
    const translated = await anthropic().messages.create({ model: `translated-${flavor}`, ...request });
    expect(translated.content).toEqual(native.content);
    expect(translated.stop_reason).toBe(native.stop_reason);
    expect(translated.usage.output_tokens).toBe(native.usage.output_tokens);
    expect(translated.usage.input_tokens + (translated.usage.cache_read_input_tokens ?? 0)).toBe(native.usage.input_tokens + (native.usage.cache_read_input_tokens ?? 0));
  });
});

describe('messages: every refusal in Anthropic shape', () => {
  const url = () => `${gateway.url}/v1/messages?beta=true`;
  const body = JSON.stringify({ model: 'native-vllm', max_tokens: 5, messages: [{ role: 'user', content: 'Hi' }] });
  const anthropicHeaders = { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'anthropic-beta': 'prompt-caching-2024-07-31' };

  it('takes the key from x-api-key, with ?beta=true and the anthropic headers', async () => {
    const answer = await post(url(), body, { ...anthropicHeaders, 'x-api-key': key.secret });
    expect(answer.status).toBe(200);
    expect((answer.json as unknown as { type: string }).type).toBe('message');
  });

  it.each([
    ['no key', {}, body, 401, 'authentication_error'],
    ['a wrong key', { 'x-api-key': 'sk-swy-wrong' }, body, 401, 'authentication_error'],
    ['an unknown model', { 'x-api-key': key.secret }, JSON.stringify({ model: 'nope', max_tokens: 5, messages: [{ role: 'user', content: 'Hi' }] }), 404, 'not_found_error'],
    [
      'a request over the key token limit',
      { 'x-api-key': limited.secret },
      JSON.stringify({ model: 'native-vllm', max_tokens: 5000, messages: [{ role: 'user', content: 'Hi' }] }),
      429,
      'rate_limit_error',
    ],
    ['malformed JSON', { 'x-api-key': key.secret }, '{"model":', 400, 'invalid_request_error'],
    ['no max_tokens', { 'x-api-key': key.secret }, JSON.stringify({ model: 'translated-vllm', messages: [{ role: 'user', content: 'Hi' }] }), 400, 'invalid_request_error'],
    ['no messages', { 'x-api-key': key.secret }, JSON.stringify({ model: 'native-vllm', max_tokens: 5 }), 400, 'invalid_request_error'],
  ])('%s: %s', async (_what, headers, requestBody, status, type) => {
    const answer = await post(url(), requestBody, { ...anthropicHeaders, ...headers });
    expect(answer.status).toBe(status);
    const error = answer.json as unknown as { type: string; error: { type: string; message: string } };
    expect(error.type).toBe('error');
    expect(error.error.type).toBe(type);
    expect(error.error.message.length).toBeGreaterThan(0);
  });

  it('the SDK raises its own error classes for them', async () => {
    await expect(anthropic('sk-swy-wrong').messages.create({ model: 'native-vllm', max_tokens: 5, messages: [{ role: 'user', content: 'Hi' }] })).rejects.toBeInstanceOf(
      Anthropic.AuthenticationError,
    );
    await expect(anthropic().messages.create({ model: 'nope', max_tokens: 5, messages: [{ role: 'user', content: 'Hi' }] })).rejects.toBeInstanceOf(Anthropic.NotFoundError);
  });
});

describe('messages: a stream that breaks mid-way', () => {
  it.each(['vllm', 'llamacpp'] as const)('ends with an Anthropic error event, natively and translated (%s)', async (flavor) => {
    const broken = await startSim({ flavor, failMode: 'die-mid-stream', failRate: 1 });
    const other = await startTestGateway({
      backends: [backendFor('native', broken), { ...backendFor('translated', broken), surfaces: { messages: 'translate' } }],
      models: [
        { name: 'native', targets: [{ backend: 'native', model: broken.options.model }] },
        { name: 'translated', targets: [{ backend: 'translated', model: broken.options.model }] },
      ],
    });
    try {
      for (const model of ['native', 'translated']) {
        const answer = await post(`${other.url}/v1/messages`, JSON.stringify({ model, max_tokens: 30, stream: true, messages: [{ role: 'user', content: 'Hello there' }] }));
        expect(answer.status).toBe(200);
        expect(answer.text).toContain('event: message_start');
        expect(answer.text).toMatch(/event: error\ndata: \{"type":"error","error":\{"type":"api_error","message":"[^"]+"\}\}/);
        expect(answer.text).not.toContain('message_stop');
      }
    } finally {
      await other.close();
      await broken.close();
    }
  });
});

describe('messages: a request the translation cannot map', () => {
  it('goes as it is to a backend serving Messages natively, and is refused only where it would be translated', async () => {
    const body = (model: string) =>
      JSON.stringify({
        model,
        max_tokens: 5,
        messages: [
          {
            role: 'user',
            content: [
              { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'A note.' } },
              { type: 'text', text: 'Summarise.' },
            ],
          },
        ],
      });
    const headers = { 'content-type': 'application/json', 'x-api-key': key.secret };
    const native = await post(`${gateway.url}/v1/messages`, body('native-vllm'), headers);
    expect(native.status).toBe(200);
    expect((native.json as unknown as { type: string }).type).toBe('message');
    const translated = await post(`${gateway.url}/v1/messages`, body('translated-vllm'), headers);
    expect(translated.status).toBe(400);
    const error = translated.json as unknown as { type: string; error: { type: string; message: string } };
    expect(error.error.type).toBe('invalid_request_error');
    expect(error.error.message).toContain('document');
  });
});
