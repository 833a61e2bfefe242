// The official openai SDK's Responses API (create, stream, a function-call round
// trip, structured output) straight against both simulator flavours, plus the
// llama.cpp flavour's tool-call and reasoning shapes on Responses and Messages
// (the tiny recorded model makes neither, so these follow llama.cpp's source).

import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import type { SimFlavor } from '../../../src/sim/simulator.ts';
import { namedEvents } from './fixture-replay.ts';
import { afterStream, postJson, useSimulator } from './sim-helpers.ts';

function client(url: string): OpenAI {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
}

const weatherTool = {
  type: 'function' as const,
  name: 'get_weather',
  strict: false,
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

describe.each<SimFlavor>(['vllm', 'llamacpp'])('the openai SDK Responses API against the %s flavour', (flavor) => {
  it('responses.create, a raw stream and responses.stream (where the runtime allows) give the same text and usage', async () => {
    const sim = await useSimulator({ flavor });
    const openai = client(sim.url);
    const created = await openai.responses.create({ model: 'sim-model', instructions: 'Be brief.', input: 'Hello there', max_output_tokens: 6 });
    expect(created.output_text.split(' ')).toHaveLength(6);
    expect(created.usage?.output_tokens).toBe(6);
    expect(created.usage?.total_tokens).toBe((created.usage?.input_tokens ?? 0) + 6);

    // Iterating the raw event stream works on both runtimes.
    const raw = await openai.responses.create({ model: 'sim-model', instructions: 'Be brief.', input: 'Hello there', max_output_tokens: 6, stream: true });
    let deltas = '';
    for await (const event of raw) if (event.type === 'response.output_text.delta') deltas += event.delta;
    expect(deltas).toBe(created.output_text);
    await afterStream();

    const stream = openai.responses.stream({ model: 'sim-model', instructions: 'Be brief.', input: 'Hello there', max_output_tokens: 6 });
    if (flavor === 'llamacpp') {
      // llama-server (v0.5.0) sends no output_index / content_index, so the SDK's accumulator cannot place the
      // parts: the real server fails exactly so (checked against it); a gateway relaying this stream must add them.
      await expect(stream.finalResponse()).rejects.toThrow('missing output at index undefined');
      return;
    }
    const final = await stream.finalResponse();
    expect(final.output_text).toBe(created.output_text);
    expect(final.usage?.output_tokens).toBe(6);
  });

  it('a function-call round trip: the call, then text once the output is sent back', async () => {
    const sim = await useSimulator({ flavor });
    const openai = client(sim.url);
    const first = await openai.responses.create({ model: 'sim-model', input: 'Weather in Paris?', tools: [weatherTool] });
    const call = first.output.find((item) => item.type === 'function_call');
    expect(call?.type === 'function_call' && call.name).toBe('get_weather');
    const args = JSON.parse(call?.type === 'function_call' ? call.arguments : '{}') as Record<string, unknown>;
    expect(typeof args.city).toBe('string');

    const streamed = await openai.responses.create({ model: 'sim-model', input: 'Weather in Paris?', tools: [weatherTool], stream: true });
    let argumentDeltas = '';
    let doneArguments: string | undefined;
    for await (const event of streamed) {
      if (event.type === 'response.function_call_arguments.delta') argumentDeltas += event.delta;
      if (event.type === 'response.output_item.done' && event.item.type === 'function_call') doneArguments = event.item.arguments;
    }
    expect(doneArguments).toBe(argumentDeltas);
    expect(JSON.parse(argumentDeltas)).toEqual({ city: expect.any(String) });
    await afterStream();

    if (call?.type !== 'function_call') throw new Error('no function call');
    const second = await openai.responses.create({
      model: 'sim-model',
      tools: [weatherTool],
      max_output_tokens: 4,
      input: [
        { role: 'user', content: 'Weather in Paris?' },
        { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
        { type: 'function_call_output', call_id: call.call_id, output: '{"celsius": 21}' },
      ],
    });
    expect(second.output.map((item) => item.type)).toEqual(['message']);
    expect(second.output_text.split(' ')).toHaveLength(4);
  });
});

describe('structured output through the Responses API (vLLM honours text.format; llama.cpp ignores it)', () => {
  it('vLLM: responses.parse with a JSON schema gives the parsed object', async () => {
    const sim = await useSimulator({ flavor: 'vllm' });
    const openai = client(sim.url);
    const schema = { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city', 'days'], additionalProperties: false };
    const parsed = await openai.responses.parse({
      model: 'sim-model',
      input: 'Plan a trip',
      text: { format: { type: 'json_schema', name: 'trip', schema, strict: true } },
    });
    expect(parsed.output_parsed).toEqual({ city: expect.any(String), days: expect.any(Number) });
  });
});

describe('llama.cpp flavour: tool calls and reasoning on Responses and Messages (from the source)', () => {
  it('Responses: reasoning item, message item and fc_/call_ function call items, and their stream events', async () => {
    const sim = await useSimulator({ flavor: 'llamacpp', reasoning: true });
    const body = (await (await postJson(sim, '/v1/responses', { input: 'Weather?', tools: [weatherTool], tool_choice: 'required' })).json()) as Record<string, any>;
    expect(body.output.map((item: { type: string }) => item.type)).toEqual(['reasoning', 'function_call']);
    expect(body.output[0]).toEqual({
      id: expect.stringMatching(/^rs_/),
      summary: [],
      type: 'reasoning',
      content: [{ text: expect.any(String), type: 'reasoning_text' }],
      encrypted_content: '',
      status: 'completed',
    });
    const call = body.output[1];
    expect(Object.keys(call)).toEqual(['id', 'type', 'status', 'arguments', 'call_id', 'name']);
    expect(call.id.slice(3)).toBe(call.call_id.slice(5));

    const events = namedEvents(await (await postJson(sim, '/v1/responses', { input: 'Weather?', tools: [weatherTool], tool_choice: 'required', stream: true })).text());
    const types = events.map((event) => event.event);
    expect(types.slice(0, 4)).toEqual(['response.created', 'response.in_progress', 'response.output_item.added', 'response.reasoning_text.delta']);
    expect(types).toContain('response.function_call_arguments.delta');
    // This release sends no function_call_arguments.done: the items close in the final result.
    expect(types).not.toContain('response.function_call_arguments.done');
    expect(types.slice(-3)).toEqual(['response.output_item.done', 'response.output_item.done', 'response.completed']);
    expect(events.every((event) => (event.data as Record<string, unknown>).sequence_number === undefined)).toBe(true);
  });

  it('Messages: thinking (empty signature), tool_use with parsed input, stop_reason tool_use; stream indexes blocks in order', async () => {
    const sim = await useSimulator({ flavor: 'llamacpp', reasoning: true });
    const tools = [{ name: 'get_weather', input_schema: weatherTool.parameters }];
    const request = { messages: [{ role: 'user', content: 'Weather?' }], tools, tool_choice: { type: 'any' }, max_tokens: 40 };
    const body = (await (await postJson(sim, '/v1/messages', request)).json()) as Record<string, any>;
    expect(body.stop_reason).toBe('tool_use');
    expect(body.content.map((block: { type: string }) => block.type)).toEqual(['thinking', 'tool_use']);
    expect(body.content[0].signature).toBe('');
    expect(body.content[1].input).toEqual({ city: expect.any(String) });

    const events = namedEvents(await (await postJson(sim, '/v1/messages', { ...request, stream: true })).text());
    const starts = events.filter((event) => event.event === 'content_block_start').map((event) => event.data as Record<string, any>);
    expect(starts.map((start) => [start.index, start.content_block.type])).toEqual([
      [0, 'thinking'],
      [1, 'tool_use'],
    ]);
    const tail = events.slice(-5).map((event) => event.event);
    expect(tail).toEqual(['content_block_delta', 'content_block_stop', 'content_block_stop', 'message_delta', 'message_stop']);
    expect((events.at(-5)?.data as Record<string, any> | undefined)?.delta).toEqual({ type: 'signature_delta', signature: '' });
    expect((events.at(-2)?.data as Record<string, any> | undefined)?.delta).toEqual({ stop_reason: 'tool_use', stop_sequence: null });
  });

  it('Messages: a tool_result turn gets text; llama.cpp errors keep their OpenAI shape', async () => {
    const sim = await useSimulator({ flavor: 'llamacpp' });
    const tools = [{ name: 'get_weather', input_schema: weatherTool.parameters }];
    const body = (await (
      await postJson(sim, '/v1/messages', {
        tools,
        max_tokens: 3,
        messages: [
          { role: 'user', content: 'Weather?' },
          { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'get_weather', input: { city: 'Paris' } }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: '21 C' }] },
        ],
      })
    ).json()) as Record<string, any>;
    expect(body.content.map((block: { type: string }) => block.type)).toEqual(['text']);
    expect(body.stop_reason).toBe('max_tokens');
    expect(body.usage.output_tokens).toBe(3);
    const missing = await postJson(sim, '/v1/messages', { max_tokens: 3 });
    expect(missing.status).toBe(500);
    expect(await missing.json()).toEqual({ error: { code: 500, message: "'messages' is required", type: 'server_error' } });
  });
});
