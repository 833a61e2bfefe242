// Records the real llama-server's answers on the surfaces beyond chat completions
// (OpenAI Responses, Anthropic Messages and count_tokens, rerank) and on the chat
// options the simulator honours (n, stop, logprobs, response_format, tool_choice, a
// max_tokens beyond the context), into test/fixtures/llamacpp/. Run through
// record-llamacpp-fixtures.ts (`--only surfaces` records just these).

import type { LlamaBuild } from '../helpers/llama-server.ts';
import { startLlamaServer } from '../helpers/llama-server.ts';
import { call, type Recorded, type Req, save } from './fixture-recording.ts';

const system = 'You are a helpful assistant.';
const question = 'Say hello in five words.';
const longPrompt = 'hello '.repeat(3000);

const weatherParameters = {
  type: 'object',
  properties: { city: { type: 'string' }, days: { type: 'integer' } },
  required: ['city'],
};
const chatTools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: weatherParameters } }];
const responsesTools = [{ type: 'function', name: 'get_weather', description: 'Weather of a city', parameters: weatherParameters }];
const anthropicTools = [{ name: 'get_weather', description: 'Weather of a city', input_schema: weatherParameters }];

const post = (path: string, json: unknown, headers?: Record<string, string>): Req => ({
  method: 'POST',
  path,
  json,
  ...(headers !== undefined ? { headers } : {}),
});

async function record(base: string, name: string, req: Req): Promise<Recorded> {
  const rec = await call(base, req);
  save(name, rec);
  return rec;
}

/** OpenAI Responses API: text, stream, tools, a tool-result turn, errors, input token counting. */
async function recordResponses(base: string): Promise<void> {
  await record(base, 'responses', post('/v1/responses', { model: 'gpt-4o-mini', instructions: system, input: question, max_output_tokens: 8 }));
  await record(base, 'responses-stream', post('/v1/responses', { model: 'gpt-4o-mini', instructions: system, input: question, max_output_tokens: 4, stream: true }));
  await record(
    base,
    'responses-items',
    post('/v1/responses', {
      model: 'x',
      input: [
        { role: 'system', content: system },
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: question }] },
      ],
      max_output_tokens: 4,
    }),
  );
  await record(
    base,
    'responses-tool-required',
    post('/v1/responses', { model: 'x', input: 'Weather in Paris?', tools: responsesTools, tool_choice: 'required', max_output_tokens: 64 }),
  );
  await record(
    base,
    'responses-tool-required-stream',
    post('/v1/responses', { model: 'x', input: 'Weather in Paris?', tools: responsesTools, tool_choice: 'required', max_output_tokens: 64, stream: true }),
  );
  await record(
    base,
    'responses-tool-result-turn',
    post('/v1/responses', {
      model: 'x',
      input: [
        { type: 'message', role: 'user', content: 'Weather in Paris?' },
        { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
        { type: 'function_call_output', call_id: 'call_1', output: '{"celsius":21}' },
      ],
      tools: responsesTools,
      max_output_tokens: 4,
    }),
  );
  await record(base, 'responses-input-tokens', post('/v1/responses/input_tokens', { model: 'x', instructions: system, input: question }));
  await record(base, 'error-responses-missing-input', post('/v1/responses', { model: 'x' }));
  await record(base, 'error-responses-previous-response-id', post('/v1/responses', { model: 'x', input: question, previous_response_id: 'resp_1' }));
  await record(base, 'error-responses-context-exceeded', post('/v1/responses', { model: 'x', input: longPrompt, max_output_tokens: 4 }));
  await record(base, 'error-responses-context-exceeded-stream', post('/v1/responses', { model: 'x', input: longPrompt, max_output_tokens: 4, stream: true }));
}

/** Anthropic Messages API: text, stream, tools, a tool_result turn, count_tokens, errors. */
async function recordMessages(base: string): Promise<void> {
  const anthropicHeaders = { 'anthropic-version': '2023-06-01' };
  const messages = [{ role: 'user', content: question }];
  await record(base, 'messages', post('/v1/messages', { model: 'claude-x', system, messages, max_tokens: 8 }, anthropicHeaders));
  await record(base, 'messages-stream', post('/v1/messages', { model: 'claude-x', system, messages, max_tokens: 4, stream: true }, anthropicHeaders));
  await record(base, 'messages-system-blocks', post('/v1/messages', { model: 'claude-x', system: [{ type: 'text', text: system }], messages, max_tokens: 4 }, anthropicHeaders));
  await record(
    base,
    'messages-tool-any',
    post('/v1/messages', {
      model: 'claude-x',
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: anthropicTools,
      tool_choice: { type: 'any' },
      max_tokens: 64,
    }),
  );
  await record(
    base,
    'messages-tool-any-stream',
    post('/v1/messages', {
      model: 'claude-x',
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: anthropicTools,
      tool_choice: { type: 'any' },
      max_tokens: 64,
      stream: true,
    }),
  );
  await record(
    base,
    'messages-tool-result-turn',
    post('/v1/messages', {
      model: 'claude-x',
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: '{"celsius":21}' }] },
      ],
      tools: anthropicTools,
      max_tokens: 4,
    }),
  );
  await record(base, 'messages-stop-sequence', post('/v1/messages', { model: 'claude-x', messages, max_tokens: 16, stop_sequences: ['e'] }));
  await record(base, 'messages-count-tokens', post('/v1/messages/count_tokens', { model: 'claude-x', system, messages }, anthropicHeaders));
  await record(base, 'error-messages-missing-messages', post('/v1/messages', { model: 'claude-x', max_tokens: 4 }));
  await record(base, 'messages-no-max-tokens', post('/v1/messages', { model: 'claude-x', messages }));
  await record(base, 'error-messages-context-exceeded', post('/v1/messages', { model: 'claude-x', messages: [{ role: 'user', content: longPrompt }], max_tokens: 4 }));
  await record(
    base,
    'error-messages-context-exceeded-stream',
    post('/v1/messages', { model: 'claude-x', messages: [{ role: 'user', content: longPrompt }], max_tokens: 4, stream: true }),
  );
  await record(base, 'error-messages-malformed-json', { method: 'POST', path: '/v1/messages', raw: '{"model": "x", "messages": [' });
}

/** Chat options: n, stop, logprobs, response_format json_schema, tool_choice, max_tokens past the context. */
async function recordChatOptions(base: string): Promise<void> {
  const messages = [
    { role: 'system', content: system },
    { role: 'user', content: question },
  ];
  await record(base, 'chat-completion-n2', post('/v1/chat/completions', { model: 'x', messages, max_tokens: 3, n: 2 }));
  await record(base, 'chat-completion-n2-stream', post('/v1/chat/completions', { model: 'x', messages, max_tokens: 2, n: 2, stream: true }));
  await record(base, 'chat-completion-logprobs', post('/v1/chat/completions', { model: 'x', messages, max_tokens: 3, logprobs: true, top_logprobs: 2 }));
  await record(base, 'chat-completion-logprobs-stream', post('/v1/chat/completions', { model: 'x', messages, max_tokens: 2, logprobs: true, top_logprobs: 2, stream: true }));
  await record(base, 'chat-completion-stop', post('/v1/chat/completions', { model: 'x', messages, max_tokens: 16, stop: ['e'] }));
  await record(
    base,
    'chat-completion-json-schema',
    post('/v1/chat/completions', {
      model: 'x',
      messages,
      max_tokens: 48,
      response_format: { type: 'json_schema', json_schema: { name: 'greeting', schema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] } } },
    }),
  );
  await record(
    base,
    'chat-completion-tool-required',
    post('/v1/chat/completions', { model: 'x', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: chatTools, tool_choice: 'required', max_tokens: 64 }),
  );
  await record(
    base,
    'chat-completion-tool-required-stream',
    post('/v1/chat/completions', {
      model: 'x',
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: chatTools,
      tool_choice: 'required',
      max_tokens: 64,
      stream: true,
    }),
  );
  await record(
    base,
    'chat-completion-tool-none',
    post('/v1/chat/completions', { model: 'x', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: chatTools, tool_choice: 'none', max_tokens: 4 }),
  );
  await record(base, 'chat-completion-max-tokens-past-context', post('/v1/chat/completions', { model: 'x', messages, max_tokens: 100_000 }));
}

/** Rerank: the main server runs without --reranking; then a server started for reranking, if the tiny model allows it. */
async function recordRerank(base: string): Promise<void> {
  const body = { model: 'x', query: 'What is a river?', documents: ['A river is flowing water.', 'Paris is a city.', 'Bananas are yellow.'], top_n: 2 };
  await record(base, 'error-rerank-not-enabled', post('/v1/rerank', body));
  let server: Awaited<ReturnType<typeof startLlamaServer>>;
  try {
    server = await startLlamaServer({ slots: 1, ctx: 512, extraArgs: ['--reranking'] });
  } catch (error) {
    // The tiny model has no classification head; say what the server said, keep the 501 above.
    console.log(`  rerank: a --reranking server did not start: ${(error as Error).message.split('\n')[0] ?? ''}`);
    return;
  }
  try {
    await record(server.url, 'rerank', post('/v1/rerank', body));
    await record(server.url, 'rerank-tei', post('/rerank', { query: body.query, texts: body.documents, return_text: true }));
    await record(server.url, 'error-rerank-missing-query', post('/v1/rerank', { documents: body.documents }));
  } finally {
    await server.close();
  }
}

/** With jinja (the default) the tiny model fails any grammar ("Failed to initialize samplers"); --no-jinja shows the real answer. */
async function recordStructuredOutput(): Promise<void> {
  const server = await startLlamaServer({ slots: 1, ctx: 512, extraArgs: ['--no-jinja'] });
  try {
    await record(
      server.url,
      'chat-completion-json-schema-no-jinja',
      post('/v1/chat/completions', {
        model: 'x',
        messages: [{ role: 'user', content: question }],
        max_tokens: 48,
        response_format: {
          type: 'json_schema',
          json_schema: { name: 'greeting', schema: { type: 'object', properties: { text: { type: 'string', maxLength: 12 } }, required: ['text'] } },
        },
      }),
    );
  } finally {
    await server.close();
  }
}

export async function recordSurfaces(_build: LlamaBuild): Promise<void> {
  const server = await startLlamaServer({ slots: 4, ctx: 2048, alias: 'tiny-llama' });
  try {
    await recordResponses(server.url);
    await recordMessages(server.url);
    await recordChatOptions(server.url);
    await recordRerank(server.url);
  } finally {
    await server.close();
  }
  await recordStructuredOutput();
}
