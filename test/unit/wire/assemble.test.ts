import { describe, expect, it } from 'vitest';
import { StreamAssembler } from '../../../src/wire/assemble.ts';

describe('assembling a non-streaming answer from chunks', () => {
  it('joins content, reasoning and streamed tool calls', () => {
    const assembler = new StreamAssembler('chat', 'public');
    const chunks = [
      { id: 'c1', object: 'chat.completion.chunk', created: 7, model: 'alias', choices: [{ index: 0, delta: { role: 'assistant', content: null } }] },
      { id: 'c1', choices: [{ index: 0, delta: { reasoning_content: 'think ' } }] },
      { id: 'c1', choices: [{ index: 0, delta: { reasoning_content: 'hard' } }] },
      { id: 'c1', choices: [{ index: 0, delta: { content: 'Hel' } }] },
      { id: 'c1', choices: [{ index: 0, delta: { content: 'lo' } }] },
      { id: 'c1', choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '' } }] } }] },
      { id: 'c1', choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] } }] },
      { id: 'c1', choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] } }] },
      { id: 'c1', choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }], timings: { predicted_n: 3 } },
      { id: 'c1', choices: [], usage: { prompt_tokens: 4, completion_tokens: 9, total_tokens: 13 } },
    ];
    for (const chunk of chunks) assembler.add(JSON.stringify(chunk));
    const result = JSON.parse(assembler.result());
    expect(result).toMatchObject({
      id: 'c1',
      object: 'chat.completion',
      created: 7,
      model: 'public',
      usage: { prompt_tokens: 4, completion_tokens: 9, total_tokens: 13 },
    });
    expect(result.choices).toEqual([
      {
        index: 0,
        message: {
          role: 'assistant',
          content: 'Hello',
          reasoning_content: 'think hard',
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }],
        },
        logprobs: null,
        finish_reason: 'tool_calls',
      },
    ]);
  });

  it('assembles text completions with several choices', () => {
    const assembler = new StreamAssembler('completion', 'p');
    assembler.add('{"id":"x","object":"text_completion","created":1,"model":"m","choices":[{"index":1,"text":"b"},{"index":0,"text":"a"}]}');
    assembler.add('{"id":"x","choices":[{"index":0,"text":"c","finish_reason":"length"},{"index":1,"text":"d","finish_reason":"stop"}]}');
    const result = JSON.parse(assembler.result());
    expect(result.object).toBe('text_completion');
    expect(result.choices.map((choice: { text: string }) => choice.text)).toEqual(['ac', 'bd']);
  });
});
