import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { ChatStreamToResponses, type ResponsesContext } from '../../../../src/surfaces/responses/translate.ts';
import { lengthChunks, reasoningChunks, textChunks, toolCallChunks } from '../chat-chunks.ts';
import { answering, parseSse } from '../sdk-fetch.ts';

const context = (request: Record<string, unknown> = {}): ResponsesContext => ({
  id: 'resp_s1',
  createdAt: 1700000000,
  model: 'public-model',
  request: { model: 'public-model', input: 'x', stream: true, ...request },
});

function translate(chunks: Array<Record<string, unknown>>, request: Record<string, unknown> = {}): { sse: string; translator: ChatStreamToResponses } {
  const translator = new ChatStreamToResponses(context(request));
  let sse = translator.start();
  for (const chunk of chunks) sse += translator.push(chunk);
  sse += translator.finish();
  return { sse, translator };
}

async function throughSdk(sse: string): Promise<{ events: Array<{ type: string }>; final: OpenAI.Responses.Response }> {
  const { fetch } = answering(sse, 'text/event-stream');
  const client = new OpenAI({ apiKey: 'k', baseURL: 'http://gateway.test/v1', fetch, maxRetries: 0 });
  const stream = client.responses.stream({ model: 'public-model', input: 'x' });
  const events: Array<{ type: string }> = [];
  for await (const event of stream) events.push(event);
  return { events, final: await stream.finalResponse() };
}

describe('chat stream -> Responses events', () => {
  it('streams text as the full event sequence with rising sequence numbers', async () => {
    const { sse, translator } = translate(textChunks());
    const events = parseSse(sse);
    expect(events.map((event) => event.event)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    events.forEach((event, index) => {
      expect(event.data.type).toBe(event.event);
      expect(event.data.sequence_number).toBe(index);
    });
    expect(events[4]?.data).toMatchObject({ item_id: 'msg_s1', output_index: 0, content_index: 0, delta: 'Hel' });
    expect(events[7]?.data).toMatchObject({ text: 'Hello world' });
    expect(events.at(-1)?.data.response).toMatchObject({
      id: 'resp_s1',
      status: 'completed',
      model: 'public-model',
      usage: { input_tokens: 9, output_tokens: 3, total_tokens: 12 },
      output: [{ id: 'msg_s1', type: 'message', status: 'completed', content: [{ type: 'output_text', text: 'Hello world' }] }],
    });
    expect(translator.usage).toEqual({ prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 });

    const { events: sdkEvents, final } = await throughSdk(sse);
    expect(sdkEvents.map((event) => event.type)).toEqual(events.map((event) => event.event));
    expect(final.output_text).toBe('Hello world');
    expect(final.status).toBe('completed');
  });

  for (const field of ['reasoning_content', 'reasoning'] as const) {
    it(`streams ${field} as a reasoning item with reasoning_text events, before the message`, async () => {
      const { sse, translator } = translate(reasoningChunks(field));
      const types = parseSse(sse).map((event) => event.event);
      expect(types).toEqual([
        'response.created',
        'response.in_progress',
        'response.output_item.added',
        'response.content_part.added',
        'response.reasoning_text.delta',
        'response.reasoning_text.delta',
        'response.reasoning_text.done',
        'response.content_part.done',
        'response.output_item.done',
        'response.output_item.added',
        'response.content_part.added',
        'response.output_text.delta',
        'response.output_text.delta',
        'response.output_text.done',
        'response.content_part.done',
        'response.output_item.done',
        'response.completed',
      ]);
      expect(translator.usage).toEqual({ prompt_tokens: 8, completion_tokens: 7, total_tokens: 15, cached_tokens: 2 });
      const { final } = await throughSdk(sse);
      expect(final.output.map((item) => item.type)).toEqual(['reasoning', 'message']);
      expect(final.output[0]).toMatchObject({ id: 'rs_s1', content: [{ type: 'reasoning_text', text: 'Two plus two.' }] });
      expect(final.output_text).toBe('It is 4.');
      expect(final.usage).toMatchObject({ output_tokens_details: { reasoning_tokens: 4 }, input_tokens_details: { cached_tokens: 2 } });
    });
  }

  it('streams tool calls as function_call items after closing the message', async () => {
    const { sse } = translate(toolCallChunks(), { tools: [{ type: 'function', name: 'weather' }] });
    const events = parseSse(sse);
    expect(events.map((event) => event.event)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.output_item.added',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.delta',
      'response.output_item.added',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(events[8]?.data).toMatchObject({
      output_index: 1,
      item: { id: 'fc_s1_0', type: 'function_call', call_id: 'call_p', name: 'weather', arguments: '', status: 'in_progress' },
    });
    expect(events[13]?.data).toMatchObject({ item_id: 'fc_s1_0', output_index: 1, arguments: '{"city":"Paris"}' });
    const { final } = await throughSdk(sse);
    expect(final.output).toMatchObject([
      { type: 'message', content: [{ text: 'Let me check.' }] },
      { type: 'function_call', call_id: 'call_p', name: 'weather', arguments: '{"city":"Paris"}', status: 'completed' },
      { type: 'function_call', call_id: 'call_r', name: 'weather', arguments: '{"city":"Rome"}', status: 'completed' },
    ]);
  });

  it('holds a tool call back until its name arrives', () => {
    const translator = new ChatStreamToResponses(context());
    translator.start();
    const held = translator.push({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'call_x', function: { arguments: '{"a"' } }] } }] });
    expect(held).toBe('');
    const named = parseSse(translator.push({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { name: 'f', arguments: ':1}' } }] } }] }));
    expect(named.map((event) => event.event)).toEqual(['response.output_item.added', 'response.function_call_arguments.delta']);
    expect(named[0]?.data).toMatchObject({ item: { call_id: 'call_x', name: 'f' } });
    expect(named[1]?.data).toMatchObject({ delta: '{"a":1}' });
  });

  it('ends a max_tokens stream with response.incomplete, which the SDK accepts', async () => {
    const { sse } = translate(lengthChunks(), { max_output_tokens: 3 });
    const events = parseSse(sse);
    expect(events.at(-1)).toMatchObject({
      event: 'response.incomplete',
      data: { response: { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' }, max_output_tokens: 3 } },
    });
    expect(events.find((event) => event.event === 'response.output_item.done')?.data).toMatchObject({ item: { status: 'incomplete' } });
    const { final } = await throughSdk(sse);
    expect(final.status).toBe('incomplete');
    expect(final.output_text).toBe('Once upon a');
  });

  it('ends an empty answer with response.completed and no items', async () => {
    const { sse } = translate([{ choices: [{ index: 0, delta: { role: 'assistant' }, finish_reason: 'stop' }] }]);
    expect(parseSse(sse).map((event) => event.event)).toEqual(['response.created', 'response.in_progress', 'response.completed']);
    const { final } = await throughSdk(sse);
    expect(final.output).toEqual([]);
  });

  it('fails a started stream with response.failed then error, which the SDK raises', async () => {
    const translator = new ChatStreamToResponses(context());
    let sse = translator.start();
    sse += translator.push({ choices: [{ index: 0, delta: { content: 'partial' } }] });
    sse += translator.fail({ message: 'The backend stream ended before completion; the answer is incomplete.', code: 'upstream_stream_interrupted', type: 'server_error' });
    expect(translator.finish()).toBe('');
    const events = parseSse(sse);
    expect(events.slice(-2)).toMatchObject([
      {
        event: 'response.failed',
        data: { response: { status: 'failed', error: { code: 'server_error' }, output: [{ type: 'message', status: 'incomplete', content: [{ text: 'partial' }] }] } },
      },
      { event: 'error', data: { type: 'error', code: 'upstream_stream_interrupted', message: expect.stringContaining('ended before completion'), param: null } },
    ]);
    await expect(throughSdk(sse)).rejects.toThrow(/ended before completion/);
  });

  it('is checked for real: the SDK refuses the same stream without its content_part.added event', async () => {
    const { sse } = translate(textChunks());
    const broken = sse
      .split('\n\n')
      .filter((block) => !block.startsWith('event: response.content_part.added'))
      .join('\n\n');
    await expect(throughSdk(broken)).rejects.toThrow(/missing content/);
  });

  it('starts by itself when the first chunk comes before start()', () => {
    const translator = new ChatStreamToResponses(context());
    const types = parseSse(translator.push({ choices: [{ index: 0, delta: { content: 'x' } }] })).map((event) => event.event);
    expect(types.slice(0, 2)).toEqual(['response.created', 'response.in_progress']);
    expect(translator.start()).toBe('');
  });
});
