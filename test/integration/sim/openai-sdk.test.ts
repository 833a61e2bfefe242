import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import type { SimFlavor } from '../../../src/sim/simulator.ts';
import { postJson, sseEvents, useSimulator } from './sim-helpers.ts';

const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } } },
  },
};

function client(url: string): OpenAI {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
}

describe.each<SimFlavor>(['vllm', 'llamacpp'])('the official openai SDK against the %s flavour', (flavor) => {
  it('creates and streams chat completions', async () => {
    const sim = await useSimulator({ flavor });
    const openai = client(sim.url);
    const completion = await openai.chat.completions.create({ model: 'sim-model', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 6 });
    expect(completion.choices[0]?.message.content?.split(' ')).toHaveLength(6);
    expect(completion.usage?.completion_tokens).toBe(6);

    const stream = await openai.chat.completions.create({
      model: 'sim-model',
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 6,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(completion.choices[0]?.message.content);
    expect(usage?.total_tokens).toBe((usage?.prompt_tokens ?? 0) + 6);
  });

  it('returns base64 embeddings that the SDK decodes to the float values', async () => {
    const sim = await useSimulator({ flavor, embeddingDim: 16 });
    const openai = client(sim.url);
    const decoded = await openai.embeddings.create({ model: 'sim-model', input: ['alpha', 'beta'] });
    expect(sim.stats().lastRequest?.body).toMatchObject({ encoding_format: 'base64' });
    const floats = await openai.embeddings.create({ model: 'sim-model', input: ['alpha', 'beta'], encoding_format: 'float' });
    expect(decoded.data).toHaveLength(2);
    expect(decoded.data[0]?.embedding).toHaveLength(16);
    expect(decoded.data[0]?.embedding).toEqual(floats.data[0]?.embedding);
    const norm = Math.hypot(...(floats.data[1]?.embedding ?? []));
    expect(norm).toBeCloseTo(1, 5);
    expect(decoded.usage.prompt_tokens).toBeGreaterThan(0);
  });

  it('calls tools, streaming the call in fragments', async () => {
    const sim = await useSimulator({ flavor });
    const openai = client(sim.url);
    const completion = await openai.chat.completions.create({
      model: 'sim-model',
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: [weatherTool],
    });
    const call = completion.choices[0]?.message.tool_calls?.[0];
    expect(completion.choices[0]?.finish_reason).toBe('tool_calls');
    expect(call?.type === 'function' ? call.function.name : undefined).toBe('get_weather');
    const args = JSON.parse(call?.type === 'function' ? call.function.arguments : '{}') as Record<string, unknown>;
    expect(Object.keys(args)).toEqual(['city', 'unit']);
    expect(['c', 'f']).toContain(args.unit);

    const response = await postJson(sim, '/v1/chat/completions', {
      model: 'sim-model',
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: [weatherTool],
      stream: true,
    });
    const chunks = sseEvents(await response.text()).slice(0, -1) as Array<{ choices: Array<{ delta: any; finish_reason: string | null }> }>;
    const toolDeltas = chunks.map((chunk) => chunk.choices[0]?.delta?.tool_calls?.[0]).filter((delta) => delta !== undefined);
    expect(toolDeltas[0]).toMatchObject({ index: 0, id: expect.any(String), type: 'function', function: { name: 'get_weather', arguments: '' } });
    expect(toolDeltas.slice(1).every((delta) => delta.id === undefined && typeof delta.function.arguments === 'string')).toBe(true);
    const streamedArgs = toolDeltas.map((delta) => delta.function.arguments as string).join('');
    expect(JSON.parse(streamedArgs)).toEqual(args);
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('tool_calls');
  });

  it('emits reasoning before the content in the runtime field', async () => {
    const sim = await useSimulator({ flavor, reasoning: true });
    const field = flavor === 'vllm' ? 'reasoning' : 'reasoning_content';
    const body = (await (await postJson(sim, '/v1/chat/completions', { messages: [{ role: 'user', content: 'Think.' }], max_tokens: 12 })).json()) as Record<string, any>;
    expect(typeof body.choices[0].message[field]).toBe('string');
    expect(body.choices[0].message[field].length).toBeGreaterThan(0);
    const response = await postJson(sim, '/v1/chat/completions', { messages: [{ role: 'user', content: 'Think.' }], max_tokens: 12, stream: true });
    const deltas = (sseEvents(await response.text()).slice(0, -1) as Array<{ choices: Array<{ delta: Record<string, unknown> }> }>).map((chunk) => chunk.choices[0]?.delta ?? {});
    const kinds = deltas.map((delta) => (field in delta ? 'r' : typeof delta.content === 'string' && delta.content !== '' ? 'c' : '-'));
    const sequence = kinds.join('').replace(/-/g, '');
    expect(sequence).toMatch(/^r+c+$/);
    expect(deltas.map((delta) => delta[field] ?? '').join('')).toBe(body.choices[0].message[field]);
  });

  it('surfaces runtime errors as the SDK error classes', async () => {
    const sim = await useSimulator({ flavor, maxModelLen: 64 });
    const openai = client(sim.url);
    const tooLong = openai.chat.completions.create({ model: 'sim-model', messages: [{ role: 'user', content: 'z'.repeat(1000) }] });
    await expect(tooLong).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    if (flavor === 'vllm') {
      const unknown = openai.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'hi' }] });
      await expect(unknown).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    }
  });
});
