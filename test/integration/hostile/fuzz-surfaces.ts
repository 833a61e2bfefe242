/**
 * The API surfaces the fuzz run covers: their path, valid base requests, the
 * fields worth mutating, and how to check that an error or a stream has the
 * surface's own shape. A new surface adds one entry.
 */

/** One API surface as the fuzz run sees it. */
export interface FuzzSurface {
  name: string;
  path: string;
  headers: Record<string, string>;
  bases: Array<Record<string, unknown>>;
  knownFields: string[];
  /** What is wrong with an error body, or undefined when it has the surface's shape. */
  errorShapeProblem(body: unknown): string | undefined;
  /** What is wrong with a streamed answer, or undefined when it ended cleanly or with a well-formed error. */
  streamProblem(text: string): string | undefined;
}

/** `{"error":{"message","type","param","code"}}` with string message, type and code. */
export function openaiErrorProblem(body: unknown): string | undefined {
  const error = (body as { error?: unknown } | null)?.error as Record<string, unknown> | undefined;
  if (!error || typeof error !== 'object') return 'error body has no `error` object';
  if (typeof error.message !== 'string' || error.message === '') return 'error.message is not a non-empty string';
  if (typeof error.type !== 'string') return 'error.type is not a string';
  if (typeof error.code !== 'string') return `error.code is ${JSON.stringify(error.code)}, not a string`;
  if (!('param' in error) || (error.param !== null && typeof error.param !== 'string')) return 'error.param is neither null nor a string';
  if (/Traceback|<html|FST_ERR|at [\w.]+ \(/i.test(error.message)) return `error.message leaks internals: ${error.message.slice(0, 120)}`;
  return undefined;
}

/** An OpenAI SSE answer ends with `[DONE]` or with an OpenAI-shaped error event. */
function openaiStreamProblem(text: string): string | undefined {
  const payloads = dataPayloads(text);
  const last = payloads.at(-1);
  if (last === '[DONE]') return undefined;
  if (last === undefined) return 'stream with no data events';
  try {
    const parsed = JSON.parse(last) as unknown;
    if ((parsed as { error?: unknown }).error !== undefined) return openaiErrorProblem(parsed);
  } catch {
    return 'stream ended on an event that is not JSON';
  }
  return 'stream ended without [DONE] or an error event';
}

/** A Responses stream ends with response.completed, .incomplete or .failed, or a well-formed `error` event. */
function responsesStreamProblem(text: string): string | undefined {
  const payloads = dataPayloads(text);
  const last = payloads.at(-1);
  if (last === undefined) return 'stream with no data events';
  let event: { type?: unknown; message?: unknown; response?: { error?: { message?: unknown } } };
  try {
    event = JSON.parse(last) as typeof event;
  } catch {
    return 'stream ended on an event that is not JSON';
  }
  if (event.type === 'response.completed' || event.type === 'response.incomplete') return undefined;
  if (event.type === 'response.failed') return typeof event.response?.error?.message === 'string' ? undefined : 'response.failed without error.message';
  if (event.type === 'error') return typeof event.message === 'string' ? undefined : 'error event without a message';
  return `stream ended on ${String(event.type)}`;
}

function dataPayloads(text: string): string[] {
  return text
    .split('\n\n')
    .map((block) =>
      block
        .split('\n')
        .find((line) => line.startsWith('data: '))
        ?.slice(6),
    )
    .filter((payload): payload is string => payload !== undefined);
}

/** Anthropic's `{"type":"error","error":{"type","message"}}`. */
function anthropicErrorProblem(body: unknown): string | undefined {
  const root = body as { type?: unknown; error?: { type?: unknown; message?: unknown } } | null;
  if (root?.type !== 'error') return 'error body is not {"type":"error",…}';
  if (typeof root.error?.type !== 'string') return 'error.type is not a string';
  if (typeof root.error.message !== 'string' || root.error.message === '') return 'error.message is not a non-empty string';
  if (/Traceback|<html|FST_ERR|at [\w.]+ \(/i.test(root.error.message)) return `error.message leaks internals: ${root.error.message.slice(0, 120)}`;
  return undefined;
}

/** A Messages stream ends with message_stop, or with a well-formed `error` event. */
function messagesStreamProblem(text: string): string | undefined {
  const last = dataPayloads(text).at(-1);
  if (last === undefined) return 'stream with no data events';
  let event: { type?: unknown };
  try {
    event = JSON.parse(last) as typeof event;
  } catch {
    return 'stream ended on an event that is not JSON';
  }
  if (event.type === 'message_stop') return undefined;
  if (event.type === 'error') return anthropicErrorProblem(event);
  return `stream ended on ${String(event.type)}`;
}

const json = { 'content-type': 'application/json' };
const messages = [{ role: 'user', content: 'Say something short.' }];

export const fuzzSurfaces: FuzzSurface[] = [
  {
    name: 'chat',
    path: '/v1/chat/completions',
    headers: json,
    bases: [
      { model: 'm-vllm', messages, max_tokens: 8, temperature: 0 },
      { model: 'm-llama', messages, max_tokens: 8, stream: true },
      { model: 'm-both', messages, max_tokens: 8, stream: true, stream_options: { include_usage: true }, temperature: 0 },
      {
        model: 'm-vllm',
        messages: [
          ...messages,
          { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
          { role: 'tool', tool_call_id: 'c1', content: 'ok' },
        ],
        tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: {} } } }],
        max_tokens: 8,
      },
      {
        model: 'm-llama',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'hi' },
              { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
            ],
          },
        ],
        max_tokens: 4,
      },
    ],
    knownFields: [
      'model',
      'messages',
      'max_tokens',
      'max_completion_tokens',
      'temperature',
      'top_p',
      'n',
      'stop',
      'stream',
      'stream_options',
      'tools',
      'tool_choice',
      'response_format',
      'seed',
      'logprobs',
      'user',
    ],
    errorShapeProblem: openaiErrorProblem,
    streamProblem: openaiStreamProblem,
  },
  {
    name: 'completions',
    path: '/v1/completions',
    headers: json,
    bases: [
      { model: 'm-vllm', prompt: 'Once upon a time', max_tokens: 8, temperature: 0 },
      { model: 'm-llama', prompt: ['a', 'b'], max_tokens: 8, stream: true },
    ],
    knownFields: ['model', 'prompt', 'max_tokens', 'temperature', 'stream', 'echo', 'logprobs', 'suffix', 'stop'],
    errorShapeProblem: openaiErrorProblem,
    streamProblem: openaiStreamProblem,
  },
  {
    name: 'embeddings',
    path: '/v1/embeddings',
    headers: json,
    bases: [
      { model: 'm-vllm', input: 'embed me' },
      { model: 'm-both', input: ['one', 'two'], encoding_format: 'float' },
    ],
    knownFields: ['model', 'input', 'encoding_format', 'dimensions', 'user'],
    errorShapeProblem: openaiErrorProblem,
    streamProblem: openaiStreamProblem,
  },
  {
    name: 'responses',
    path: '/v1/responses',
    headers: json,
    bases: [
      { model: 'm-vllm', input: 'Say something short.', max_output_tokens: 8 },
      { model: 'm-llama', input: [{ role: 'user', content: [{ type: 'input_text', text: 'hi' }] }], max_output_tokens: 8, stream: true },
      {
        model: 'm-both',
        instructions: 'Be brief.',
        input: [
          { role: 'user', content: 'call f' },
          { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{}' },
          { type: 'function_call_output', call_id: 'c1', output: 'ok' },
        ],
        tools: [{ type: 'function', name: 'f', parameters: { type: 'object', properties: {} } }],
        max_output_tokens: 8,
        stream: true,
      },
      {
        model: 'm-vllm',
        input: 'json please',
        text: { format: { type: 'json_schema', name: 'x', schema: { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] } } },
        max_output_tokens: 16,
        temperature: 0,
      },
    ],
    knownFields: [
      'model',
      'input',
      'instructions',
      'tools',
      'tool_choice',
      'max_output_tokens',
      'temperature',
      'top_p',
      'text',
      'reasoning',
      'stream',
      'store',
      'previous_response_id',
      'metadata',
      'parallel_tool_calls',
      'user',
    ],
    errorShapeProblem: openaiErrorProblem,
    streamProblem: responsesStreamProblem,
  },
  {
    name: 'messages',
    path: '/v1/messages',
    headers: { ...json, 'anthropic-version': '2023-06-01' },
    bases: [
      { model: 'm-vllm', max_tokens: 8, messages: [{ role: 'user', content: 'Say something short.' }] },
      { model: 'm-llama', max_tokens: 8, system: [{ type: 'text', text: 'Be brief.' }], messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }], stream: true },
      {
        model: 'm-both',
        max_tokens: 8,
        temperature: 0,
        tools: [{ name: 'f', description: 'a tool', input_schema: { type: 'object', properties: {} } }],
        messages: [
          { role: 'user', content: 'call f' },
          { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'f', input: {} }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: 'ok' }] },
        ],
        stream: true,
      },
    ],
    knownFields: ['model', 'messages', 'system', 'max_tokens', 'stop_sequences', 'temperature', 'top_p', 'top_k', 'tools', 'tool_choice', 'thinking', 'metadata', 'stream'],
    errorShapeProblem: anthropicErrorProblem,
    streamProblem: messagesStreamProblem,
  },
  {
    name: 'rerank',
    path: '/v1/rerank',
    headers: json,
    bases: [
      { model: 'm-vllm', query: 'what is a gateway?', documents: ['a door', 'a router of requests', 'a fence'] },
      { model: 'm-llama', query: 'q', documents: ['one', 'two'], top_n: 1 },
    ],
    knownFields: ['model', 'query', 'documents', 'top_n', 'return_documents'],
    errorShapeProblem: openaiErrorProblem,
    streamProblem: openaiStreamProblem,
  },
];
