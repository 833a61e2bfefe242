import Anthropic from '@anthropic-ai/sdk';
import { describe, expect, it } from 'vitest';
import { ChatStreamToMessages } from '../../../../src/surfaces/anthropic/translate.ts';
import { lengthChunks, reasoningChunks, textChunks, toolCallChunks } from '../chat-chunks.ts';
import { answering, parseSse } from '../sdk-fetch.ts';

const context = { id: 'msg_s1', model: 'public-model' };

function translate(chunks: Array<Record<string, unknown>>): { sse: string; translator: ChatStreamToMessages } {
  const translator = new ChatStreamToMessages(context);
  let sse = translator.start();
  for (const chunk of chunks) sse += translator.push(chunk);
  sse += translator.finish();
  return { sse, translator };
}

async function throughSdk(sse: string): Promise<{ events: string[]; final: Anthropic.Message }> {
  const { fetch } = answering(sse, 'text/event-stream');
  const client = new Anthropic({ apiKey: 'k', baseURL: 'http://gateway.test', fetch, maxRetries: 0 });
  const stream = client.messages.stream({ model: 'public-model', max_tokens: 100, messages: [{ role: 'user', content: 'x' }] });
  const events: string[] = [];
  for await (const event of stream) events.push(event.type);
  return { events, final: await stream.finalMessage() };
}

describe('chat stream -> Anthropic Messages events', () => {
  it('streams text: message_start, ping, one text block, message_delta, message_stop', async () => {
    const { sse, translator } = translate(textChunks());
    const events = parseSse(sse);
    expect(events.map((event) => (event.event === 'content_block_delta' ? `delta:${(event.data.delta as { type: string }).type}` : event.event))).toEqual([
      'message_start',
      'ping',
      'content_block_start',
      'delta:text_delta',
      'delta:text_delta',
      'delta:text_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    for (const event of events) expect(event.data.type).toBe(event.event);
    expect(events[0]?.data).toMatchObject({ message: { id: 'msg_s1', model: 'public-model', role: 'assistant', content: [], stop_reason: null } });
    expect(events.at(-2)?.data).toEqual({ type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { input_tokens: 9, output_tokens: 3 } });
    expect(translator.usage).toEqual({ prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 });

    const { events: sdkEvents, final } = await throughSdk(sse);
    expect(sdkEvents).toEqual(events.filter((event) => event.event !== 'ping').map((event) => event.event));
    expect(final.content).toEqual([{ type: 'text', text: 'Hello world' }]);
    expect(final.stop_reason).toBe('end_turn');
    expect(final.usage).toMatchObject({ input_tokens: 9, output_tokens: 3 });
  });

  for (const field of ['reasoning_content', 'reasoning'] as const) {
    it(`streams ${field} as a thinking block closed by a signature_delta, then the text block`, async () => {
      const { sse, translator } = translate(reasoningChunks(field));
      const events = parseSse(sse);
      const blocks = events.filter((event) => event.event.startsWith('content_block')).map((event) => `${event.event}@${String(event.data.index)}`);
      expect(blocks).toEqual([
        'content_block_start@0',
        'content_block_delta@0',
        'content_block_delta@0',
        'content_block_delta@0',
        'content_block_stop@0',
        'content_block_start@1',
        'content_block_delta@1',
        'content_block_delta@1',
        'content_block_stop@1',
      ]);
      expect(events.find((event) => event.event === 'content_block_delta' && (event.data.delta as { type: string }).type === 'signature_delta')).toBeDefined();
      expect(translator.usage).toEqual({ prompt_tokens: 8, completion_tokens: 7, total_tokens: 15, cached_tokens: 2 });
      const { final } = await throughSdk(sse);
      expect(final.content).toEqual([
        { type: 'thinking', thinking: 'Two plus two.', signature: '' },
        { type: 'text', text: 'It is 4.' },
      ]);
      expect(final.usage).toMatchObject({ input_tokens: 6, cache_read_input_tokens: 2, output_tokens: 7 });
    });
  }

  it('streams tool calls as tool_use blocks with input_json_delta, ending with tool_use', async () => {
    const { sse } = translate(toolCallChunks());
    const events = parseSse(sse);
    const starts = events.filter((event) => event.event === 'content_block_start').map((event) => event.data);
    expect(starts).toEqual([
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'call_p', name: 'weather', input: {} } },
      { type: 'content_block_start', index: 2, content_block: { type: 'tool_use', id: 'call_r', name: 'weather', input: {} } },
    ]);
    expect(events.at(-2)?.data).toMatchObject({ delta: { stop_reason: 'tool_use' } });
    const { final } = await throughSdk(sse);
    expect(final.stop_reason).toBe('tool_use');
    expect(final.content).toEqual([
      { type: 'text', text: 'Let me check.' },
      { type: 'tool_use', id: 'call_p', name: 'weather', input: { city: 'Paris' } },
      { type: 'tool_use', id: 'call_r', name: 'weather', input: { city: 'Rome' } },
    ]);
  });

  it('ends a max_tokens stream with stop_reason max_tokens', async () => {
    const { final } = await throughSdk(translate(lengthChunks()).sse);
    expect(final.stop_reason).toBe('max_tokens');
    expect(final.content).toEqual([{ type: 'text', text: 'Once upon a' }]);
  });

  it('reports a matched stop string (vLLM stop_reason) as stop_sequence', () => {
    const chunks = textChunks();
    const finish = chunks[4] as { choices: Array<Record<string, unknown>> };
    finish.choices[0] = { ...finish.choices[0], stop_reason: '###' };
    const events = parseSse(translate(chunks).sse);
    expect(events.at(-2)?.data).toMatchObject({ delta: { stop_reason: 'stop_sequence', stop_sequence: '###' } });
  });

  it('holds a tool call back until its name arrives, and opens held calls at the end', () => {
    const translator = new ChatStreamToMessages(context);
    translator.start();
    expect(translator.push({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'call_x', function: { arguments: '{"a":1}' } }] } }] })).toBe('');
    const events = parseSse(translator.finish());
    expect(events.map((event) => event.event)).toEqual(['content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    expect(events[0]?.data).toMatchObject({ content_block: { type: 'tool_use', id: 'call_x', name: '' } });
    expect(events[1]?.data).toMatchObject({ delta: { type: 'input_json_delta', partial_json: '{"a":1}' } });
  });

  it('ends an empty answer with no blocks', async () => {
    const { sse } = translate([{ choices: [{ index: 0, delta: { role: 'assistant' }, finish_reason: 'stop' }] }]);
    expect(parseSse(sse).map((event) => event.event)).toEqual(['message_start', 'ping', 'message_delta', 'message_stop']);
    const { final } = await throughSdk(sse);
    expect(final.content).toEqual([]);
  });

  it('fails with an Anthropic error event, which the SDK raises', async () => {
    const translator = new ChatStreamToMessages(context);
    let sse = translator.start() + translator.push({ choices: [{ index: 0, delta: { content: 'part' } }] });
    sse += translator.fail({ message: 'The backend stream ended before completion; the answer is incomplete.', code: 'upstream_stream_interrupted', type: 'server_error' });
    expect(translator.finish()).toBe('');
    expect(parseSse(sse).at(-1)).toEqual({
      event: 'error',
      data: { type: 'error', error: { type: 'api_error', message: 'The backend stream ended before completion; the answer is incomplete.' } },
    });
    await expect(throughSdk(sse)).rejects.toThrow(/ended before completion/);
  });

  it('is checked for real: the SDK refuses a stream without message_start', async () => {
    const { sse } = translate(textChunks());
    const broken = sse
      .split('\n\n')
      .filter((block) => !block.startsWith('event: message_start'))
      .join('\n\n');
    await expect(throughSdk(broken)).rejects.toThrow();
  });
});
