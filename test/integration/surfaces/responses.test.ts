/**
 * POST /v1/responses through the surface seam, with the official openai SDK
 * unchanged: passed through to a runtime that serves it (vLLM simulator) and
 * translated onto chat completions (the same vLLM simulator forced with
 * `surfaces: {responses: translate}`, and llama.cpp, whose native Responses
 * the gateway does not use by default). The same calls must give equivalent
 * answers in every mode.
 */
import type OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { backendFor, post, startSim, startTestGateway, type TestGateway } from '../../helpers/gateway.ts';

let vllm: Simulator;
let llama: Simulator;
let gateway: TestGateway;

beforeAll(async () => {
  vllm = await startSim({ flavor: 'vllm' });
  llama = await startSim({ flavor: 'llamacpp' });
  gateway = await startTestGateway({
    backends: [
      backendFor('vllm', vllm),
      { ...backendFor('vllm-translated', vllm), surfaces: { responses: 'translate' } },
      backendFor('llama', llama),
      { ...backendFor('llama-native', llama), surfaces: { responses: 'native' } },
    ],
    models: [
      { name: 'native', targets: [{ backend: 'vllm', model: 'Qwen/Qwen3-8B' }] },
      { name: 'translated', targets: [{ backend: 'vllm-translated', model: 'Qwen/Qwen3-8B' }] },
      { name: 'llama', targets: [{ backend: 'llama', model: 'qwen3-8b-q4' }] },
      { name: 'llama-native', targets: [{ backend: 'llama-native', model: 'qwen3-8b-q4' }] },
    ],
  });
});

afterAll(async () => {
  await gateway?.close();
  await Promise.all([vllm, llama].map((simulator) => simulator?.close()));
});

const weatherTool = {
  type: 'function' as const,
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  strict: false,
};

const modes = [
  { model: 'native', translated: null },
  { model: 'translated', translated: 'responses->chat' },
  { model: 'llama', translated: 'responses->chat' },
] as const;

describe.each(modes)('responses via $model', ({ model, translated }) => {
  it('responses.create answers with output_text, usage and the public model name', async () => {
    const { data, response } = await gateway.client().responses.create({ model, input: 'Say hello in five words.', max_output_tokens: 12 }).withResponse();
    expect(response.headers.get('x-switchyard-translated')).toBe(translated);
    expect(data.object).toBe('response');
    expect(data.model).toBe(model);
    expect(data.output_text.length).toBeGreaterThan(0);
    expect(data.output[0]?.type).toBe('message');
    expect(data.usage?.input_tokens).toBeGreaterThan(0);
    expect(data.usage?.output_tokens).toBe(12);
    expect(data.usage?.total_tokens).toBe((data.usage?.input_tokens ?? 0) + 12);
  });

  it('responses.stream delivers the event sequence the SDK accumulates', async () => {
    const stream = gateway.client().responses.stream({ model, input: 'Say hello in five words.', max_output_tokens: 8 });
    const types: string[] = [];
    let deltas = '';
    const sequence: number[] = [];
    for await (const event of stream) {
      types.push(event.type);
      sequence.push(event.sequence_number);
      if (event.type === 'response.output_text.delta') deltas += event.delta;
    }
    const final = await stream.finalResponse();
    expect(types.slice(0, 4)).toEqual(['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
    expect(types).toContain('response.output_text.done');
    expect(types).toContain('response.output_item.done');
    expect(['response.completed', 'response.incomplete']).toContain(types.at(-1));
    expect(sequence).toEqual([...sequence].sort((a, b) => a - b));
    expect(final.output_text).toBe(deltas);
    expect(final.model).toBe(model);
    expect(final.usage?.output_tokens).toBe(8);
  });

  it('completes a tools round trip: function_call, then its output, then a text answer', async () => {
    const client = gateway.client();
    const input: OpenAI.Responses.ResponseInput = [{ role: 'user', content: 'What is the weather in Paris?' }];
    const first = await client.responses.create({ model, input, tools: [weatherTool], tool_choice: 'required' });
    const call = first.output.find((item) => item.type === 'function_call');
    expect(call).toBeDefined();
    if (call?.type !== 'function_call') return;
    expect(call.name).toBe('get_weather');
    expect(call.call_id.length).toBeGreaterThan(0);
    expect(typeof JSON.parse(call.arguments)).toBe('object');
    const second = await client.responses.create({
      model,
      input: [...input, call, { type: 'function_call_output', call_id: call.call_id, output: '{"celsius":21}' }],
      tools: [weatherTool],
      max_output_tokens: 10,
    });
    expect(second.output.some((item) => item.type === 'function_call')).toBe(false);
    expect(second.output_text.length).toBeGreaterThan(0);
  });

  it('streams a function call with its arguments', async () => {
    const stream = gateway.client().responses.stream({ model, input: 'Weather in Oslo?', tools: [weatherTool], tool_choice: 'required' });
    let argumentsText = '';
    for await (const event of stream) if (event.type === 'response.function_call_arguments.delta') argumentsText += event.delta;
    const final = await stream.finalResponse();
    const call = final.output.find((item) => item.type === 'function_call');
    expect(call?.type === 'function_call' ? call.arguments : undefined).toBe(argumentsText);
  });
});

describe('responses structured output', () => {
  it.each(['native', 'translated', 'llama'])('text.format json_schema gives JSON of the schema via %s', async (model) => {
    const response = await gateway.client().responses.create({
      model,
      input: 'Name a city.',
      text: { format: { type: 'json_schema', name: 'city', schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } },
    });
    const parsed = JSON.parse(response.output_text) as { city?: unknown };
    expect(typeof parsed.city).toBe('string');
  });
});

describe('responses: native and translated answers are equivalent', () => {
  it('the same request gives the same text and usage natively and translated', async () => {
    const client = gateway.client();
    const request = { input: [{ role: 'user' as const, content: 'Describe a switchyard.' }], instructions: 'Be brief.', max_output_tokens: 10, temperature: 0.5 };
    const native = await client.responses.create({ model: 'native', ...request });
    const translated = await client.responses.create({ model: 'translated', ...request });
    expect(translated.output_text).toBe(native.output_text);
    expect(translated.usage?.input_tokens).toBe(native.usage?.input_tokens);
    expect(translated.usage?.output_tokens).toBe(native.usage?.output_tokens);
    expect(translated.status).toBe(native.status);
  });
});

describe('responses surface, raw HTTP', () => {
  it("forces llama.cpp's own /v1/responses when configured (JSON answers)", async () => {
    const answer = await post(`${gateway.url}/v1/responses`, JSON.stringify({ model: 'llama-native', input: 'Hi', max_output_tokens: 4 }));
    expect(answer.status).toBe(200);
    expect(answer.headers.get('x-switchyard-translated')).toBeNull();
    expect((answer.json as unknown as { model: string }).model).toBe('llama-native');
  });

  it.each([
    [{ model: 'native' }, 'input'],
    [{ input: 'x' }, 'model'],
    [{ model: 'translated', input: 'x', stream: 'yes' }, 'stream'],
    [{ model: 'translated', input: 'x', tools: [{ type: 'function' }] }, 'tools[0].name'],
  ])('refuses %j with a 400 naming %s', async (body, param) => {
    const answer = await post(`${gateway.url}/v1/responses`, JSON.stringify(body));
    expect(answer.status).toBe(400);
    expect(answer.json.error.param).toBe(param);
  });

  it('refuses previous_response_id without Redis, naming the option', async () => {
    const answer = await post(`${gateway.url}/v1/responses`, JSON.stringify({ model: 'native', input: 'x', previous_response_id: 'resp_1' }));
    expect(answer.status).toBe(400);
    expect(answer.json.error.param).toBe('previous_response_id');
    expect(answer.json.error.message).toContain('redis');
    const get = await fetch(`${gateway.url}/v1/responses/resp_1`);
    expect(get.status).toBe(400);
    expect(((await get.json()) as { error: { message: string } }).error.message).toContain('redis');
  });

  it.each([
    ['vllm', 'natively', '"type":"response.output_text.delta"'],
    ['llamacpp', 'translated', '"type":"response.failed"'],
  ] as const)('ends a %s stream (%s) that breaks mid-way with an error event, never a clean end', async (flavor, _mode, before) => {
    const broken = await startSim({ flavor, failMode: 'die-mid-stream', failRate: 1 });
    const other = await startTestGateway({ backends: [backendFor('broken', broken)], models: [{ name: 'm', targets: [{ backend: 'broken', model: broken.options.model }] }] });
    try {
      const answer = await post(`${other.url}/v1/responses`, JSON.stringify({ model: 'm', input: 'Hello there', stream: true, max_output_tokens: 30 }));
      expect(answer.status).toBe(200);
      expect(answer.text).toContain(before);
      expect(answer.text).toMatch(/event: error\ndata: \{"type":"error",[^\n]*"code":"upstream_stream_interrupted"/);
      expect(answer.text).not.toContain('"response.completed"');
      const line = other.logs.find((entry) => entry.includes('"url":"/v1/responses"'));
      expect(line).toContain('"errorCode":"upstream_stream_interrupted"');
    } finally {
      await other.close();
      await broken.close();
    }
  });
});
