import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { chatCompletionToResponse, responsesUsage, type ResponsesContext } from '../../../../src/surfaces/responses/translate.ts';
import { answering } from '../sdk-fetch.ts';

const context = (request: Record<string, unknown> = {}): ResponsesContext => ({
  id: 'resp_abc',
  createdAt: 1700000000,
  model: 'public-model',
  request: { model: 'public-model', input: 'x', ...request },
});

function chat(message: Record<string, unknown>, finishReason: string, usage?: Record<string, unknown>): Record<string, unknown> {
  const body: Record<string, unknown> = {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1700000000,
    model: 'upstream-name',
    choices: [{ index: 0, message: { role: 'assistant', ...message }, finish_reason: finishReason }],
  };
  if (usage) body.usage = usage;
  return body;
}

describe('chat completion -> Response', () => {
  it('answers text with a completed message item, usage and the echo fields', () => {
    const response = chatCompletionToResponse(
      chat({ content: 'Hello there' }, 'stop', { prompt_tokens: 10, completion_tokens: 3, total_tokens: 13, prompt_tokens_details: { cached_tokens: 4 } }),
      context({ instructions: 'Sys', temperature: 0.5, metadata: { a: '1' }, user: 'u' }),
    );
    expect(response).toMatchObject({
      id: 'resp_abc',
      object: 'response',
      created_at: 1700000000,
      status: 'completed',
      error: null,
      incomplete_details: null,
      instructions: 'Sys',
      model: 'public-model',
      temperature: 0.5,
      top_p: 1,
      tool_choice: 'auto',
      tools: [],
      parallel_tool_calls: true,
      text: { format: { type: 'text' } },
      metadata: { a: '1' },
      user: 'u',
      store: false,
      output: [{ id: 'msg_abc', type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Hello there', annotations: [], logprobs: [] }] }],
      usage: { input_tokens: 10, output_tokens: 3, total_tokens: 13, input_tokens_details: { cached_tokens: 4 }, output_tokens_details: { reasoning_tokens: 0 } },
    });
  });

  it('puts reasoning first (reasoning_content or vLLM reasoning) and counts reasoning tokens', () => {
    for (const field of ['reasoning_content', 'reasoning']) {
      const response = chatCompletionToResponse(
        chat({ content: '4', [field]: 'two plus two' }, 'stop', { prompt_tokens: 5, completion_tokens: 9, total_tokens: 14, completion_tokens_details: { reasoning_tokens: 7 } }),
        context({ reasoning: { effort: 'high' } }),
      );
      expect(response.output).toEqual([
        { id: 'rs_abc', type: 'reasoning', summary: [], content: [{ type: 'reasoning_text', text: 'two plus two' }], status: 'completed' },
        { id: 'msg_abc', type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: '4', annotations: [], logprobs: [] }] },
      ]);
      expect(response.reasoning).toEqual({ effort: 'high', summary: null });
      expect(response.usage).toMatchObject({ output_tokens_details: { reasoning_tokens: 7 } });
    }
  });

  it('answers tool calls with function_call items carrying the chat call ids', () => {
    const response = chatCompletionToResponse(
      chat(
        {
          content: null,
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
            { id: 'call_2', type: 'function', function: { name: 'weather', arguments: '{"city":"Rome"}' } },
          ],
        },
        'tool_calls',
      ),
      context({ tools: [{ type: 'function', name: 'weather' }] }),
    );
    expect(response.status).toBe('completed');
    expect(response.output).toEqual([
      { id: 'fc_abc_0', type: 'function_call', status: 'completed', call_id: 'call_1', name: 'weather', arguments: '{"city":"Paris"}' },
      { id: 'fc_abc_1', type: 'function_call', status: 'completed', call_id: 'call_2', name: 'weather', arguments: '{"city":"Rome"}' },
    ]);
    expect(response.tools).toEqual([{ type: 'function', name: 'weather' }]);
  });

  it('reports finish_reason length as incomplete with max_output_tokens', () => {
    const response = chatCompletionToResponse(chat({ content: 'Once upon' }, 'length'), context({ max_output_tokens: 2 }));
    expect(response).toMatchObject({ status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' }, max_output_tokens: 2 });
    expect((response.output as Array<Record<string, unknown>>)[0]?.status).toBe('incomplete');
    expect(response).not.toHaveProperty('usage', expect.anything());
  });

  it('reports a refusal as a refusal part and content_filter as incomplete', () => {
    const response = chatCompletionToResponse(chat({ content: null, refusal: 'No.' }, 'content_filter'), context());
    expect(response).toMatchObject({ status: 'incomplete', incomplete_details: { reason: 'content_filter' } });
    expect(response.output).toEqual([{ id: 'msg_abc', type: 'message', role: 'assistant', status: 'incomplete', content: [{ type: 'refusal', refusal: 'No.' }] }]);
  });

  it('takes usage from llama.cpp timings when the answer has none', () => {
    const body = chat({ content: 'x' }, 'stop');
    body.timings = { prompt_n: 3, cache_n: 5, predicted_n: 2 };
    expect(chatCompletionToResponse(body, context()).usage).toEqual({
      input_tokens: 8,
      input_tokens_details: { cached_tokens: 5 },
      output_tokens: 2,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 10,
    });
  });

  it('is read by the official openai SDK (responses.create, output_text, structured output parse)', async () => {
    const answer = chatCompletionToResponse(chat({ content: '{"n":4}' }, 'stop', { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 }), context());
    const { fetch } = answering(JSON.stringify(answer), 'application/json');
    const client = new OpenAI({ apiKey: 'k', baseURL: 'http://gateway.test/v1', fetch, maxRetries: 0 });
    const created = await client.responses.create({ model: 'public-model', input: 'x' });
    expect(created.output_text).toBe('{"n":4}');
    expect(created.usage?.total_tokens).toBe(3);
    const parsed = await client.responses.parse({
      model: 'public-model',
      input: 'x',
      text: {
        format: {
          type: 'json_schema',
          name: 'num',
          strict: true,
          schema: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'], additionalProperties: false },
        },
      },
    });
    expect(parsed.output_parsed).toEqual({ n: 4 });
  });
});

describe('usage of a native Response', () => {
  it('reads the answer body and the response.completed event', () => {
    const usage = { input_tokens: 12, output_tokens: 5, total_tokens: 17, input_tokens_details: { cached_tokens: 8 }, output_tokens_details: { reasoning_tokens: 1 } };
    expect(responsesUsage({ object: 'response', usage })).toEqual({ prompt_tokens: 12, completion_tokens: 5, total_tokens: 17, cached_tokens: 8 });
    expect(responsesUsage({ type: 'response.completed', response: { usage } })).toEqual({ prompt_tokens: 12, completion_tokens: 5, total_tokens: 17, cached_tokens: 8 });
    expect(responsesUsage({ object: 'response', usage: { input_tokens: 2, output_tokens: 1 } })).toEqual({ prompt_tokens: 2, completion_tokens: 1, total_tokens: 3 });
    expect(responsesUsage({ object: 'response', usage: null })).toBeUndefined();
    expect(responsesUsage({ type: 'response.output_text.delta', delta: 'x' })).toBeUndefined();
  });
});
