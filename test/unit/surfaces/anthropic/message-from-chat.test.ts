import Anthropic from '@anthropic-ai/sdk';
import { describe, expect, it } from 'vitest';
import { anthropicError, chatCompletionToMessage, mergeMessagesUsage, messagesUsage } from '../../../../src/surfaces/anthropic/translate.ts';
import { answering } from '../sdk-fetch.ts';

const context = { id: 'msg_abc', model: 'public-model' };

function chat(message: Record<string, unknown>, finishReason: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1700000000,
    model: 'upstream',
    choices: [{ index: 0, message: { role: 'assistant', ...message }, finish_reason: finishReason, ...extra }],
    usage: { prompt_tokens: 30, completion_tokens: 8, total_tokens: 38, prompt_tokens_details: { cached_tokens: 20 } },
  };
}

describe('chat completion -> Anthropic Message', () => {
  it('answers text with end_turn and usage counting cache reads apart', () => {
    expect(chatCompletionToMessage(chat({ content: 'Hello' }, 'stop'), context)).toEqual({
      id: 'msg_abc',
      type: 'message',
      role: 'assistant',
      model: 'public-model',
      content: [{ type: 'text', text: 'Hello' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: 10, cache_read_input_tokens: 20, output_tokens: 8 },
    });
  });

  it('puts thinking first, from reasoning_content or reasoning', () => {
    for (const field of ['reasoning_content', 'reasoning']) {
      expect(chatCompletionToMessage(chat({ content: '4', [field]: '2+2' }, 'stop'), context).content).toEqual([
        { type: 'thinking', thinking: '2+2', signature: '' },
        { type: 'text', text: '4' },
      ]);
    }
  });

  it('answers tool calls with tool_use blocks, input parsed, and stop_reason tool_use', () => {
    const message = chatCompletionToMessage(
      chat(
        {
          content: 'Checking.',
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
            { id: 'call_2', type: 'function', function: { name: 'weather', arguments: '{"city": "Ro' } },
            { id: 'call_3', type: 'function', function: { name: 'now', arguments: '' } },
          ],
        },
        'tool_calls',
      ),
      context,
    );
    expect(message.stop_reason).toBe('tool_use');
    expect(message.content).toEqual([
      { type: 'text', text: 'Checking.' },
      { type: 'tool_use', id: 'call_1', name: 'weather', input: { city: 'Paris' } },
      // unparseable arguments become an empty input rather than a broken answer
      { type: 'tool_use', id: 'call_2', name: 'weather', input: {} },
      { type: 'tool_use', id: 'call_3', name: 'now', input: {} },
    ]);
    // llama.cpp reports tool calls with finish_reason stop in some templates
    expect(chatCompletionToMessage(chat({ content: null, tool_calls: [{ id: 'c', function: { name: 'f', arguments: '{}' } }] }, 'stop'), context).stop_reason).toBe('tool_use');
  });

  it('maps length to max_tokens, a matched stop string to stop_sequence, content_filter to refusal', () => {
    expect(chatCompletionToMessage(chat({ content: 'Once' }, 'length'), context).stop_reason).toBe('max_tokens');
    expect(chatCompletionToMessage(chat({ content: 'a' }, 'stop', { stop_reason: 'END' }), context)).toMatchObject({ stop_reason: 'stop_sequence', stop_sequence: 'END' });
    expect(chatCompletionToMessage(chat({ content: 'a' }, 'stop', { stop_reason: 151645 }), context)).toMatchObject({ stop_reason: 'end_turn', stop_sequence: null });
    expect(chatCompletionToMessage(chat({ content: 'a' }, 'stop', { matched_stop: 'END' }), context)).toMatchObject({ stop_reason: 'stop_sequence', stop_sequence: 'END' });
    expect(chatCompletionToMessage(chat({ content: 'a' }, 'stop', { matched_stop: 151645 }), context)).toMatchObject({ stop_reason: 'end_turn', stop_sequence: null });
    expect(chatCompletionToMessage(chat({ content: '' }, 'content_filter'), context).stop_reason).toBe('refusal');
  });

  it('is read by the official Anthropic SDK (messages.create)', async () => {
    const { fetch } = answering(JSON.stringify(chatCompletionToMessage(chat({ content: 'Hi!', reasoning_content: 'greet' }, 'stop'), context)), 'application/json');
    const client = new Anthropic({ apiKey: 'k', baseURL: 'http://gateway.test', fetch, maxRetries: 0 });
    const message = await client.messages.create({ model: 'public-model', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
    expect(message.content.map((block) => block.type)).toEqual(['thinking', 'text']);
    expect(message.usage.input_tokens).toBe(10);
  });
});

describe('usage of native Messages answers and events', () => {
  it('adds cache reads and writes back into prompt tokens', () => {
    expect(messagesUsage({ type: 'message', usage: { input_tokens: 5, cache_read_input_tokens: 20, cache_creation_input_tokens: 3, output_tokens: 7 } })).toEqual({
      prompt_tokens: 28,
      completion_tokens: 7,
      total_tokens: 35,
      cached_tokens: 20,
    });
    expect(messagesUsage({ type: 'message_start', message: { usage: { input_tokens: 9, output_tokens: 1 } } })).toEqual({
      prompt_tokens: 9,
      completion_tokens: 1,
      total_tokens: 10,
    });
    expect(messagesUsage({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'x' } })).toBeUndefined();
  });

  it('merges a stream: input from message_start, output from the last message_delta', () => {
    let usage = mergeMessagesUsage(undefined, { type: 'message_start', message: { usage: { input_tokens: 4, cache_read_input_tokens: 6, output_tokens: 1 } } });
    usage = mergeMessagesUsage(usage, { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 12 } });
    expect(usage).toEqual({ prompt_tokens: 10, completion_tokens: 12, total_tokens: 22, cached_tokens: 6 });
    usage = mergeMessagesUsage(usage, { type: 'message_delta', delta: {}, usage: { input_tokens: 8, cache_read_input_tokens: 2, output_tokens: 13 } });
    expect(usage).toEqual({ prompt_tokens: 10, completion_tokens: 13, total_tokens: 23, cached_tokens: 2 });
  });
});

describe('errors in Anthropic shape', () => {
  const cases: Array<[number, string, string | null, string]> = [
    [400, 'invalid_request_error', 'invalid_value', 'invalid_request_error'],
    [401, 'invalid_request_error', 'invalid_api_key', 'authentication_error'],
    [403, 'permission_error', 'model_not_allowed', 'permission_error'],
    [404, 'invalid_request_error', 'model_not_found', 'not_found_error'],
    [413, 'invalid_request_error', 'request_too_large', 'invalid_request_error'],
    [429, 'rate_limit_error', 'rate_limit_exceeded', 'rate_limit_error'],
    [429, 'insufficient_quota', 'insufficient_quota', 'rate_limit_error'],
    [500, 'server_error', 'internal_error', 'api_error'],
    [502, 'server_error', 'upstream_error', 'api_error'],
    [503, 'server_error', 'no_backend_available', 'overloaded_error'],
    [529, 'server_error', null, 'overloaded_error'],
    [504, 'server_error', 'upstream_timeout', 'timeout_error'],
  ];
  for (const [status, type, code, expected] of cases) {
    it(`${status} ${type}${code ? ` (${code})` : ''} -> ${expected}`, () => {
      const rendered = anthropicError({ status, type, code, message: 'why and how to fix it' });
      expect(rendered.status).toBe(status);
      expect(JSON.parse(rendered.body)).toEqual({ type: 'error', error: { type: expected, message: 'why and how to fix it' } });
    });
  }

  it('is raised by the official Anthropic SDK with the matching error class', async () => {
    const { status, body } = anthropicError({ status: 429, type: 'rate_limit_error', message: 'Rate limit reached.' });
    const { fetch } = answering(body, 'application/json', status);
    const client = new Anthropic({ apiKey: 'k', baseURL: 'http://gateway.test', fetch, maxRetries: 0 });
    const failure = await client.messages.create({ model: 'm', max_tokens: 1, messages: [{ role: 'user', content: 'x' }] }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Anthropic.RateLimitError);
    expect((failure as InstanceType<typeof Anthropic.RateLimitError>).error).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
  });
});
