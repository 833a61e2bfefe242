import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../../../src/errors.ts';
import { messagesRequestToChat } from '../../../../src/surfaces/anthropic/translate.ts';

function refusal(body: Record<string, unknown>): GatewayError {
  try {
    messagesRequestToChat(body);
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayError);
    return error as GatewayError;
  }
  throw new Error('expected the translation to refuse the request');
}

const base = { model: 'm', max_tokens: 100 };

describe('Messages request -> chat request', () => {
  it('maps system, a text turn, sampling, stop sequences, user and stream', () => {
    expect(
      messagesRequestToChat({
        ...base,
        system: 'Be brief.',
        messages: [{ role: 'user', content: 'Hi' }],
        temperature: 0.3,
        top_p: 0.8,
        top_k: 40,
        stop_sequences: ['END', '###'],
        metadata: { user_id: 'user-7' },
        stream: true,
        service_tier: 'auto',
      }),
    ).toEqual({
      model: 'm',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
      ],
      max_tokens: 100,
      temperature: 0.3,
      top_p: 0.8,
      top_k: 40,
      stop: ['END', '###'],
      user: 'user-7',
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it("joins system blocks and leaves out Claude Code's per-request billing header", () => {
    const chat = messagesRequestToChat({
      ...base,
      system: [
        { type: 'text', text: 'x-anthropic-billing-header: cc_version=2.1.101.e51; cc_entrypoint=cli; cch=a5145;' },
        { type: 'text', text: "You are Claude Code, Anthropic's official CLI for Claude." },
        { type: 'text', text: 'Answer tersely.', cache_control: { type: 'ephemeral' } },
      ],
      messages: [{ role: 'user', content: 'Hi' }],
    });
    expect(chat.messages).toEqual([
      { role: 'system', content: "You are Claude Code, Anthropic's official CLI for Claude.\nAnswer tersely." },
      { role: 'user', content: 'Hi' },
    ]);
  });

  it('maps text and image blocks (base64 and url) to content parts', () => {
    const chat = messagesRequestToChat({
      ...base,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is in ' },
            { type: 'text', text: 'these?' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBOR' } },
            { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
          ],
        },
        { role: 'assistant', content: [{ type: 'text', text: 'Two cats.' }] },
        { role: 'user', content: [{ type: 'text', text: 'Thanks.' }] },
      ],
    });
    expect(chat.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is in ' },
          { type: 'text', text: 'these?' },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBOR' } },
          { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
        ],
      },
      { role: 'assistant', content: 'Two cats.' },
      { role: 'user', content: 'Thanks.' },
    ]);
  });

  it('round-trips tools: tool_use -> tool_calls with thinking as reasoning_content, tool_result -> tool messages before the rest of the turn', () => {
    const chat = messagesRequestToChat({
      ...base,
      tools: [{ name: 'weather', description: 'Weather now', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
      tool_choice: { type: 'auto', disable_parallel_tool_use: true },
      messages: [
        { role: 'user', content: 'Paris and Rome?' },
        {
          role: 'assistant',
          content: [
            { type: 'thinking', thinking: 'Two calls.', signature: 'sig' },
            { type: 'redacted_thinking', data: 'xx' },
            { type: 'text', text: 'Checking.' },
            { type: 'tool_use', id: 'toolu_1', name: 'weather', input: { city: 'Paris' } },
            { type: 'tool_use', id: 'toolu_2', name: 'weather', input: { city: 'Rome' } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: 'sunny' },
            { type: 'tool_result', tool_use_id: 'toolu_2', content: [{ type: 'text', text: 'rain' }], is_error: false },
            { type: 'text', text: 'Summarise.' },
          ],
        },
      ],
    });
    expect(chat.messages).toEqual([
      { role: 'user', content: 'Paris and Rome?' },
      {
        role: 'assistant',
        content: 'Checking.',
        reasoning_content: 'Two calls.',
        tool_calls: [
          { id: 'toolu_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
          { id: 'toolu_2', type: 'function', function: { name: 'weather', arguments: '{"city":"Rome"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'toolu_1', content: 'sunny' },
      { role: 'tool', tool_call_id: 'toolu_2', content: 'rain' },
      { role: 'user', content: 'Summarise.' },
    ]);
    expect(chat.tools).toEqual([
      { type: 'function', function: { name: 'weather', description: 'Weather now', parameters: { type: 'object', properties: { city: { type: 'string' } } } } },
    ]);
    expect(chat.tool_choice).toBe('auto');
    expect(chat.parallel_tool_calls).toBe(false);
  });

  it('gives a tool-only assistant turn null content and keeps image tool results as parts', () => {
    const chat = messagesRequestToChat({
      ...base,
      messages: [
        { role: 'user', content: 'shot' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'screenshot', input: {} }] },
        {
          role: 'user',
          content: [
            {
              type: 'tool_result',
              tool_use_id: 't1',
              content: [
                { type: 'text', text: 'here' },
                { type: 'image', source: { type: 'url', url: 'https://x/y.png' } },
              ],
            },
          ],
        },
      ],
    });
    expect(chat.messages).toEqual([
      { role: 'user', content: 'shot' },
      { role: 'assistant', content: null, tool_calls: [{ id: 't1', type: 'function', function: { name: 'screenshot', arguments: '{}' } }] },
      {
        role: 'tool',
        tool_call_id: 't1',
        content: [
          { type: 'text', text: 'here' },
          { type: 'image_url', image_url: { url: 'https://x/y.png' } },
        ],
      },
    ]);
  });

  it('maps tool_choice any, tool and none', () => {
    const tools = [{ name: 'f', input_schema: { type: 'object' } }];
    const messages = [{ role: 'user', content: 'x' }];
    expect(messagesRequestToChat({ ...base, messages, tools, tool_choice: { type: 'any' } }).tool_choice).toBe('required');
    expect(messagesRequestToChat({ ...base, messages, tools, tool_choice: { type: 'none' } }).tool_choice).toBe('none');
    expect(messagesRequestToChat({ ...base, messages, tools, tool_choice: { type: 'tool', name: 'f' } }).tool_choice).toEqual({ type: 'function', function: { name: 'f' } });
  });

  it("passes a thinking budget as llama.cpp's thinking_budget_tokens and structured output as response_format", () => {
    const messages = [{ role: 'user', content: 'x' }];
    expect(messagesRequestToChat({ ...base, messages, thinking: { type: 'enabled', budget_tokens: 2048 } }).thinking_budget_tokens).toBe(2048);
    expect(messagesRequestToChat({ ...base, messages, thinking: { type: 'disabled' } })).not.toHaveProperty('thinking_budget_tokens');
    const schema = { type: 'object', properties: { n: { type: 'integer' } } };
    expect(messagesRequestToChat({ ...base, messages, output_config: { format: { type: 'json_schema', schema }, effort: 'max' } })).toMatchObject({
      response_format: { type: 'json_schema', json_schema: { name: 'output', schema, strict: true } },
      reasoning_effort: 'high',
    });
  });

  it('refuses what it cannot translate, naming the parameter and the fix', () => {
    const messages = [{ role: 'user', content: 'x' }];
    const missing = refusal({ model: 'm', messages });
    expect(missing).toMatchObject({ status: 400, type: 'invalid_request_error', param: 'max_tokens' });
    expect(missing.message).toMatch(/max_tokens is required/);
    expect(refusal({ ...base, max_tokens: 0, messages })).toMatchObject({ param: 'max_tokens' });
    expect(refusal({ ...base })).toMatchObject({ param: 'messages' });
    expect(refusal({ ...base, messages: [] })).toMatchObject({ param: 'messages' });
    expect(refusal({ ...base, messages: [{ role: 'tool', content: 'x' }] })).toMatchObject({ param: 'messages[0].role' });
    // Claude Code sends a system turn after the first user turn: it joins the leading system message.
    const midSystem = messagesRequestToChat({
      ...base,
      system: 'Top.',
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'system', content: [{ type: 'text', text: 'Agents: a, b.' }] },
      ],
    });
    expect(midSystem.messages).toEqual([
      { role: 'system', content: 'Top.\n\nAgents: a, b.' },
      { role: 'user', content: 'hi' },
    ]);
    expect(refusal({ ...base, messages: [{ role: 'user', content: [{ type: 'document', source: {} }] }] })).toMatchObject({ param: 'messages[0].content[0].type' });
    expect(refusal({ ...base, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'file', file_id: 'f' } }] }] })).toMatchObject({
      param: 'messages[0].content[0].source.type',
    });
    // Server tools have no chat equivalent: left out (as llama.cpp does), so clients that always offer them still work.
    const serverTool = messagesRequestToChat({
      ...base,
      messages,
      tools: [
        { type: 'web_search_20250305', name: 'web_search' },
        { name: 'f', input_schema: { type: 'object' } },
      ],
    });
    expect((serverTool.tools as Array<{ function: { name: string } }>).map((tool) => tool.function.name)).toEqual(['f']);
    expect(refusal({ ...base, messages, tools: [{ name: 'f' }] })).toMatchObject({ param: 'tools[0].input_schema' });
    expect(refusal({ ...base, messages, tools: [{ name: 'f', input_schema: {} }], tool_choice: { type: 'sometimes' } })).toMatchObject({ param: 'tool_choice.type' });
    expect(refusal({ ...base, messages, stop_sequences: [1] })).toMatchObject({ param: 'stop_sequences[0]' });
    expect(refusal({ ...base, messages, mcp_servers: [{ url: 'x' }] })).toMatchObject({ param: 'mcp_servers' });
    expect(refusal({ ...base, messages, temperature: 'hot' })).toMatchObject({ param: 'temperature' });
  });
});
