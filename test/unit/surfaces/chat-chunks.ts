/**
 * Chat completion chunk sequences in the shapes llama.cpp and vLLM stream them (role chunk first,
 * reasoning before content, tool calls by index with id + name in their first delta, finish chunk,
 * then the include_usage chunk), for the stream translators' tests.
 */
type Chunk = Record<string, unknown>;

function chunk(delta: Record<string, unknown>, finishReason: string | null = null, extra: Record<string, unknown> = {}): Chunk {
  return { id: 'chatcmpl-7', object: 'chat.completion.chunk', created: 1700000000, model: 'upstream', choices: [{ index: 0, delta, finish_reason: finishReason }], ...extra };
}

export function usageChunk(prompt: number, completion: number, extra: Record<string, unknown> = {}): Chunk {
  return {
    id: 'chatcmpl-7',
    object: 'chat.completion.chunk',
    created: 1700000000,
    model: 'upstream',
    choices: [],
    usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, ...extra },
  };
}

/** Text only: "Hello world", stop. */
export function textChunks(finishReason = 'stop'): Chunk[] {
  return [
    chunk({ role: 'assistant', content: null }),
    chunk({ content: 'Hel' }),
    chunk({ content: 'lo ' }),
    chunk({ content: 'world' }),
    chunk({}, finishReason),
    usageChunk(9, 3),
  ];
}

/** llama.cpp with a reasoning template: reasoning_content, then content; timings on the last chunk. */
export function reasoningChunks(field: 'reasoning_content' | 'reasoning' = 'reasoning_content'): Chunk[] {
  return [
    chunk({ role: 'assistant', content: null }),
    chunk({ [field]: 'Two plus ' }),
    chunk({ [field]: 'two.' }),
    chunk({ content: 'It is ' }),
    chunk({ content: '4.' }),
    chunk({}, 'stop', { timings: { prompt_n: 6, cache_n: 2, predicted_n: 7 } }),
    usageChunk(8, 7, { prompt_tokens_details: { cached_tokens: 2 }, completion_tokens_details: { reasoning_tokens: 4 } }),
  ];
}

/** Some text, then two tool calls streamed one after the other. */
export function toolCallChunks(): Chunk[] {
  return [
    chunk({ role: 'assistant', content: null }),
    chunk({ content: 'Let me check.' }),
    chunk({ tool_calls: [{ index: 0, id: 'call_p', type: 'function', function: { name: 'weather', arguments: '' } }] }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }),
    chunk({ tool_calls: [{ index: 1, id: 'call_r', type: 'function', function: { name: 'weather', arguments: '{"city":"Rome"}' } }] }),
    chunk({}, 'tool_calls'),
    usageChunk(20, 15),
  ];
}

/** Cut by max_tokens. */
export function lengthChunks(): Chunk[] {
  return [chunk({ role: 'assistant', content: null }), chunk({ content: 'Once upon a' }), chunk({}, 'length'), usageChunk(4, 3)];
}
