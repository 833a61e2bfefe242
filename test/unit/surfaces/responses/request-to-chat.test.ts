import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../../../src/errors.ts';
import { responsesRequestToChat } from '../../../../src/surfaces/responses/translate.ts';

function refusal(body: Record<string, unknown>, history?: unknown[]): GatewayError {
  try {
    responsesRequestToChat(body, history);
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayError);
    return error as GatewayError;
  }
  throw new Error('expected the translation to refuse the request');
}

describe('Responses request -> chat request', () => {
  it('turns a string input and instructions into system + user messages', () => {
    expect(responsesRequestToChat({ model: 'm', input: 'Hi', instructions: 'Be brief.' })).toEqual({
      model: 'm',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
      ],
    });
  });

  it('joins instructions and leading developer/system items into one system message, as strict chat templates need', () => {
    const chat = responsesRequestToChat({
      model: 'm',
      instructions: 'Base prompt.',
      input: [
        { type: 'message', role: 'developer', content: [{ type: 'input_text', text: 'Sandbox: read-only.' }] },
        { role: 'user', content: 'hi' },
        { role: 'system', content: 'Later note.' },
      ],
    });
    expect(chat.messages).toEqual([
      { role: 'system', content: 'Base prompt.\n\nSandbox: read-only.' },
      { role: 'user', content: 'hi' },
      { role: 'system', content: 'Later note.' },
    ]);
  });

  it('maps sampling, output limit, user, reasoning effort and stream, and keeps Responses-only fields at the gateway', () => {
    const chat = responsesRequestToChat({
      model: 'm',
      input: 'x',
      max_output_tokens: 64,
      temperature: 0.2,
      top_p: 0.9,
      user: 'u-1',
      reasoning: { effort: 'low', summary: 'auto' },
      stream: true,
      metadata: { team: 'a' },
      store: false,
      include: ['reasoning.encrypted_content'],
      truncation: 'auto',
      prompt_cache_key: 'k',
      service_tier: 'auto',
      previous_response_id: 'resp_1',
      top_k: 20,
      chat_template_kwargs: { enable_thinking: false },
    });
    expect(chat).toEqual({
      model: 'm',
      messages: [{ role: 'user', content: 'x' }],
      max_tokens: 64,
      temperature: 0.2,
      top_p: 0.9,
      user: 'u-1',
      reasoning_effort: 'low',
      stream: true,
      stream_options: { include_usage: true },
      // vendor extras pass on, as they do on chat
      top_k: 20,
      chat_template_kwargs: { enable_thinking: false },
    });
  });

  it('translates message items with input_text, input_image and output_text parts', () => {
    const chat = responsesRequestToChat({
      model: 'm',
      input: [
        { role: 'developer', content: 'Rules.' },
        {
          type: 'message',
          role: 'user',
          content: [
            { type: 'input_text', text: 'What is ' },
            { type: 'input_text', text: 'this?' },
          ],
        },
        { type: 'message', role: 'assistant', status: 'completed', id: 'msg_1', content: [{ type: 'output_text', text: 'A cat.', annotations: [] }] },
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'And this?' },
            { type: 'input_image', image_url: 'data:image/png;base64,AAAA', detail: 'low' },
          ],
        },
      ],
    });
    expect(chat.messages).toEqual([
      { role: 'system', content: 'Rules.' },
      { role: 'user', content: 'What is this?' },
      { role: 'assistant', content: 'A cat.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'And this?' },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA', detail: 'low' } },
        ],
      },
    ]);
  });

  it('merges a turn of reasoning, message and function calls into one assistant message, and function_call_output into tool messages', () => {
    const chat = responsesRequestToChat({
      model: 'm',
      input: [
        { role: 'user', content: 'Weather in Paris and Rome?' },
        { type: 'reasoning', id: 'rs_1', summary: [], content: [{ type: 'reasoning_text', text: 'Two cities.' }] },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Checking.' }] },
        { type: 'function_call', id: 'fc_1', call_id: 'call_a', name: 'weather', arguments: '{"city":"Paris"}' },
        { type: 'function_call', id: 'fc_2', call_id: 'call_b', name: 'weather', arguments: '{"city":"Rome"}' },
        { type: 'function_call_output', call_id: 'call_a', output: 'sunny' },
        { type: 'function_call_output', call_id: 'call_b', output: [{ type: 'input_text', text: 'rain' }] },
        { type: 'reasoning', id: 'rs_2', summary: [{ type: 'summary_text', text: 'Summarise.' }] },
        { type: 'message', role: 'assistant', content: 'Paris sunny, Rome rain.' },
        { role: 'user', content: 'Thanks' },
      ],
    });
    expect(chat.messages).toEqual([
      { role: 'user', content: 'Weather in Paris and Rome?' },
      {
        role: 'assistant',
        reasoning_content: 'Two cities.',
        content: 'Checking.',
        tool_calls: [
          { id: 'call_a', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
          { id: 'call_b', type: 'function', function: { name: 'weather', arguments: '{"city":"Rome"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_a', content: 'sunny' },
      { role: 'tool', tool_call_id: 'call_b', content: 'rain' },
      { role: 'assistant', reasoning_content: 'Summarise.', content: 'Paris sunny, Rome rain.' },
      { role: 'user', content: 'Thanks' },
    ]);
  });

  it('gives a lone function call null content and a lone reasoning item empty content', () => {
    const chat = responsesRequestToChat({
      model: 'm',
      input: [
        { role: 'user', content: 'go' },
        { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{}' },
        { type: 'function_call_output', call_id: 'c1', output: 'ok' },
        { type: 'reasoning', summary: [], content: [{ type: 'reasoning_text', text: 'hm' }] },
      ],
    });
    expect(chat.messages).toEqual([
      { role: 'user', content: 'go' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'c1', content: 'ok' },
      { role: 'assistant', reasoning_content: 'hm', content: '' },
    ]);
  });

  it('places earlier turns (previous_response_id) between the instructions and the new input', () => {
    const chat = responsesRequestToChat({ model: 'm', instructions: 'Sys', input: [{ type: 'function_call_output', call_id: 'c1', output: '42' }] }, [
      { role: 'user', content: 'compute' },
      { type: 'function_call', call_id: 'c1', name: 'calc', arguments: '{}' },
    ]);
    expect(chat.messages).toEqual([
      { role: 'system', content: 'Sys' },
      { role: 'user', content: 'compute' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'calc', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'c1', content: '42' },
    ]);
  });

  it('translates function tools, tool_choice and parallel_tool_calls', () => {
    const parameters = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
    const chat = responsesRequestToChat({
      model: 'm',
      input: 'x',
      tools: [{ type: 'function', name: 'weather', description: 'Weather now', parameters, strict: true }],
      tool_choice: { type: 'function', name: 'weather' },
      parallel_tool_calls: false,
    });
    expect(chat.tools).toEqual([{ type: 'function', function: { name: 'weather', description: 'Weather now', parameters, strict: true } }]);
    expect(chat.tool_choice).toEqual({ type: 'function', function: { name: 'weather' } });
    expect(chat.parallel_tool_calls).toBe(false);
    for (const choice of ['none', 'auto', 'required']) {
      expect(responsesRequestToChat({ model: 'm', input: 'x', tools: [{ type: 'function', name: 'f' }], tool_choice: choice }).tool_choice).toBe(choice);
    }
  });

  it('narrows the tools to allowed_tools and uses its mode', () => {
    const chat = responsesRequestToChat({
      model: 'm',
      input: 'x',
      tools: [
        { type: 'function', name: 'a' },
        { type: 'function', name: 'b' },
      ],
      tool_choice: { type: 'allowed_tools', mode: 'required', tools: [{ type: 'function', name: 'b' }] },
    });
    expect(chat.tools).toEqual([{ type: 'function', function: { name: 'b' } }]);
    expect(chat.tool_choice).toBe('required');
  });

  it('maps text.format json_schema and json_object to response_format, and text to nothing', () => {
    const schema = { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'], additionalProperties: false };
    expect(responsesRequestToChat({ model: 'm', input: 'x', text: { format: { type: 'json_schema', name: 'num', schema, strict: true } } }).response_format).toEqual({
      type: 'json_schema',
      json_schema: { name: 'num', schema, strict: true },
    });
    expect(responsesRequestToChat({ model: 'm', input: 'x', text: { format: { type: 'json_object' } } }).response_format).toEqual({ type: 'json_object' });
    expect(responsesRequestToChat({ model: 'm', input: 'x', text: { format: { type: 'text' }, verbosity: 'low' } })).not.toHaveProperty('response_format');
  });

  it('refuses what it cannot translate, naming the parameter and the fix', () => {
    // Hosted tools and Codex's namespace groups have no chat equivalent: left out (as llama.cpp does), so Codex CLI works.
    const hosted = responsesRequestToChat({
      model: 'm',
      input: 'x',
      tools: [{ type: 'function', name: 'f' }, { type: 'web_search' }, { type: 'namespace', name: 'ns', tools: [] }],
    });
    expect((hosted.tools as Array<{ function: { name: string } }>).map((tool) => tool.function.name)).toEqual(['f']);
    expect(refusal({ model: 'm' })).toMatchObject({ param: 'input' });
    expect(refusal({ model: 'm', input: 42 })).toMatchObject({ param: 'input' });
    expect(refusal({ model: 'm', input: [{ type: 'computer_call', id: 'x' }] })).toMatchObject({ param: 'input[0].type' });
    expect(refusal({ model: 'm', input: [{ type: 'item_reference', id: 'msg_1' }] }).message).toMatch(/previous_response_id/);
    expect(refusal({ model: 'm', input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'f' }] }] })).toMatchObject({ param: 'input[0].content[0].type' });
    expect(refusal({ model: 'm', input: [{ role: 'user', content: [{ type: 'input_image', file_id: 'f' }] }] })).toMatchObject({ param: 'input[0].content[0].image_url' });
    expect(refusal({ model: 'm', input: [{ role: 'robot', content: 'x' }] })).toMatchObject({ param: 'input[0].role' });
    expect(refusal({ model: 'm', input: [{ type: 'function_call', call_id: 'c', name: 'f' }] })).toMatchObject({ param: 'input[0].arguments' });
    expect(refusal({ model: 'm', input: [{ type: 'function_call_output', output: 'x' }] })).toMatchObject({ param: 'input[0].call_id' });
    expect(refusal({ model: 'm', input: 'x', text: { format: { type: 'json_schema', name: 'n' } } })).toMatchObject({ param: 'text.format.schema' });
    expect(refusal({ model: 'm', input: 'x', text: { format: { type: 'yaml' } } })).toMatchObject({ param: 'text.format.type' });
    expect(refusal({ model: 'm', input: 'x', tools: [{ type: 'function', name: 'f' }], tool_choice: { type: 'web_search_preview' } })).toMatchObject({ param: 'tool_choice' });
    expect(refusal({ model: 'm', input: 'x', max_output_tokens: 'many' })).toMatchObject({ param: 'max_output_tokens' });
    expect(refusal({ model: 'm', input: 'x', background: true })).toMatchObject({ param: 'background' });
    expect(refusal({ model: 'm', input: 'x', conversation: 'conv_1' })).toMatchObject({ param: 'conversation' });
    expect(refusal({ model: 'm', input: 'x', instructions: ['x'] })).toMatchObject({ param: 'instructions' });
  });
});
