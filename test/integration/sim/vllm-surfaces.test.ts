// The vLLM flavour's Responses, Messages (Anthropic), count_tokens and rerank answers,
// checked against the shapes read in vLLM's source (entrypoints/openai/responses,
// entrypoints/anthropic, the score/rerank protocol): no recording exists for vLLM, so
// these pin the documented key sets, event orders and error shapes.

import { describe, expect, it } from 'vitest';
import { namedEvents } from './fixture-replay.ts';
import { postJson, useSimulator } from './sim-helpers.ts';

const weather = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };

describe('vLLM flavour: /v1/responses', () => {
  it('answers a full ResponsesResponse: the request echoed, status incomplete when max_output_tokens cut it', async () => {
    const sim = await useSimulator({ flavor: 'vllm' });
    const response = await postJson(sim, '/v1/responses', { model: 'sim-model', instructions: 'Be brief.', input: 'Hello', max_output_tokens: 5, metadata: { run: '7' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    const body = (await response.json()) as Record<string, any>;
    expect(Object.keys(body)).toEqual([
      'id',
      'created_at',
      'incomplete_details',
      'instructions',
      'metadata',
      'model',
      'object',
      'output',
      'parallel_tool_calls',
      'temperature',
      'tool_choice',
      'tools',
      'top_p',
      'background',
      'max_output_tokens',
      'max_tool_calls',
      'previous_response_id',
      'prompt',
      'reasoning',
      'service_tier',
      'status',
      'text',
      'top_logprobs',
      'truncation',
      'usage',
      'user',
      'input_messages',
      'output_messages',
    ]);
    expect(body).toMatchObject({
      object: 'response',
      model: 'sim-model',
      status: 'incomplete',
      incomplete_details: { reason: 'max_output_tokens' },
      instructions: 'Be brief.',
      metadata: { run: '7' },
      max_output_tokens: 5,
      tool_choice: 'auto',
    });
    expect(body.id).toMatch(/^resp_[0-9a-f]{32}$/);
    expect(body.output).toHaveLength(1);
    expect(body.output[0]).toMatchObject({ type: 'message', role: 'assistant', status: 'completed' });
    expect(body.output[0].content[0].text.split(' ')).toHaveLength(5);
    expect(body.usage).toMatchObject({ output_tokens: 5, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 0 } });
    expect(body.usage.total_tokens).toBe(body.usage.input_tokens + 5);

    const free = (await (await postJson(sim, '/v1/responses', { model: 'sim-model', input: 'Hello' })).json()) as Record<string, any>;
    expect(free).toMatchObject({ status: 'completed', incomplete_details: null });
  });

  it('streams created and in_progress at once, then items with a sequence_number counting from 0, then completed', async () => {
    const sim = await useSimulator({ flavor: 'vllm', reasoning: true });
    const response = await postJson(sim, '/v1/responses', { model: 'sim-model', input: 'Hello', max_output_tokens: 6, stream: true });
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const events = namedEvents(await response.text());
    expect(events.map((event) => event.event)).toEqual([
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
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    const data = events.map((event) => event.data as Record<string, any>);
    expect(data.map((item) => item.sequence_number)).toEqual(data.map((_, index) => index));
    expect(data.every((item, index) => item.type === events[index]?.event)).toBe(true);
    // Items are numbered in output order: the reasoning first, the message second.
    expect(data[2]).toMatchObject({ output_index: 0, item: { type: 'reasoning', status: 'in_progress' } });
    expect(data[9]).toMatchObject({ output_index: 1, item: { type: 'message', status: 'in_progress' } });
    expect(Object.keys(data[11] ?? {})).toEqual(['content_index', 'delta', 'item_id', 'logprobs', 'output_index', 'sequence_number', 'type']);
    const completed = data.at(-1)?.response as Record<string, any>;
    expect(completed.output.map((item: { type: string }) => item.type)).toEqual(['reasoning', 'message']);
    expect(completed.usage.output_tokens_details.reasoning_tokens).toBe(2);
    expect(completed.output[1].content[0].text).toBe(
      data
        .filter((item) => item.type === 'response.output_text.delta')
        .map((item) => item.delta)
        .join(''),
    );
  });

  it('streams a function call as an item with argument deltas; a function_call_output turn gets text', async () => {
    const sim = await useSimulator({ flavor: 'vllm' });
    const tools = [{ type: 'function', name: 'get_weather', parameters: weather }];
    const events = namedEvents(await (await postJson(sim, '/v1/responses', { model: 'sim-model', input: 'Weather?', tools, stream: true })).text());
    const types = events.map((event) => event.event);
    expect(types.slice(0, 3)).toEqual(['response.created', 'response.in_progress', 'response.output_item.added']);
    expect(types.slice(-3)).toEqual(['response.function_call_arguments.done', 'response.output_item.done', 'response.completed']);
    const added = events[2]?.data as Record<string, any>;
    expect(added.item).toMatchObject({ type: 'function_call', name: 'get_weather', arguments: '', status: 'in_progress' });
    const done = events.at(-2)?.data as Record<string, any>;
    expect(JSON.parse(done.item.arguments)).toEqual({ city: expect.any(String) });
    const deltas = events.filter((event) => event.event === 'response.function_call_arguments.delta').map((event) => (event.data as { delta: string }).delta);
    expect(deltas.join('')).toBe(done.item.arguments);

    const turn = (await (
      await postJson(sim, '/v1/responses', {
        model: 'sim-model',
        tools,
        max_output_tokens: 3,
        input: [
          { role: 'user', content: 'Weather?' },
          { type: 'function_call', call_id: done.item.call_id, name: 'get_weather', arguments: done.item.arguments },
          { type: 'function_call_output', call_id: done.item.call_id, output: '{"celsius":21}' },
        ],
      })
    ).json()) as Record<string, any>;
    expect(turn.output.map((item: { type: string }) => item.type)).toEqual(['message']);
  });

  it('errors like vLLM: unknown previous_response_id 404, prompt past max_model_len 400 with its message, no input 400', async () => {
    const sim = await useSimulator({ flavor: 'vllm', maxModelLen: 64 });
    const previous = await postJson(sim, '/v1/responses', { model: 'sim-model', input: 'x', previous_response_id: 'resp_1' });
    expect(previous.status).toBe(404);
    expect(await previous.json()).toEqual({ error: { message: "Response with id 'resp_1' not found.", type: 'invalid_request_error', param: 'response_id', code: 404 } });
    const stored = await fetch(`${sim.url}/v1/responses/resp_2`);
    expect(stored.status).toBe(404);
    expect(((await stored.json()) as { error: { param: string } }).error.param).toBe('response_id');
    const long = await postJson(sim, '/v1/responses', { model: 'sim-model', input: 'x'.repeat(400) });
    expect(long.status).toBe(400);
    const body = (await long.json()) as { error: Record<string, unknown> };
    expect(body.error).toMatchObject({ type: 'invalid_request_error', param: 'input', code: 400 });
    expect(body.error.message).toMatch(/^The engine prompt length \d+ exceeds the max_model_len 64\. Please reduce prompt\.$/);
    // max_output_tokens past the room is capped, not refused.
    const capped = (await (await postJson(sim, '/v1/responses', { model: 'sim-model', input: 'x', max_output_tokens: 500 })).json()) as Record<string, any>;
    expect(capped.usage.input_tokens + capped.usage.output_tokens).toBe(64);
    const missing = await postJson(sim, '/v1/responses', { model: 'sim-model' });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { error: { param: string } }).error.param).toBe('body.input');
  });

  it('honours text.format json_schema with a valid document', async () => {
    const sim = await useSimulator({ flavor: 'vllm' });
    const body = (await (
      await postJson(sim, '/v1/responses', { model: 'sim-model', input: 'Where?', text: { format: { type: 'json_schema', name: 'place', schema: weather } } })
    ).json()) as Record<string, any>;
    expect(body.text).toEqual({ format: { type: 'json_schema', name: 'place', schema: weather } });
    expect(JSON.parse(body.output[0].content[0].text)).toEqual({ city: expect.any(String) });
  });
});

describe('vLLM flavour: /v1/messages (Anthropic)', () => {
  const anthropic = { model: 'sim-model', messages: [{ role: 'user', content: 'Hello' }] };

  it('answers a message dumped without None fields: no stop_sequence, usage of input and output tokens', async () => {
    const sim = await useSimulator({ flavor: 'vllm', reasoning: true });
    const body = (await (await postJson(sim, '/v1/messages', { ...anthropic, max_tokens: 6 })).json()) as Record<string, any>;
    expect(Object.keys(body)).toEqual(['id', 'type', 'role', 'content', 'model', 'stop_reason', 'usage']);
    expect(body).toMatchObject({ type: 'message', role: 'assistant', stop_reason: 'max_tokens', usage: { output_tokens: 6 } });
    expect(body.content.map((block: { type: string }) => block.type)).toEqual(['thinking', 'text']);
    expect(body.content[0].signature).toMatch(/^[0-9a-f]{32}$/);
  });

  it('streams message_start (no type/role: exclude_unset), blocks with a signature before a thinking block closes, message_delta, message_stop', async () => {
    const sim = await useSimulator({ flavor: 'vllm', reasoning: true });
    const tools = [{ name: 'get_weather', input_schema: weather }];
    const events = namedEvents(await (await postJson(sim, '/v1/messages', { ...anthropic, max_tokens: 30, tools, stream: true })).text());
    const types = events.map((event) => event.event);
    expect(types[0]).toBe('message_start');
    expect(types.slice(1, 3)).toEqual(['content_block_start', 'content_block_delta']);
    const signatureAt = events.findIndex((event) => (event.data as Record<string, any>).delta?.type === 'signature_delta');
    expect(types[signatureAt + 1]).toBe('content_block_stop');
    expect(types.slice(-4)).toEqual(['content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    const start = events[0]?.data as Record<string, any>;
    expect(Object.keys(start.message)).toEqual(['id', 'content', 'model', 'stop_reason', 'stop_sequence', 'usage']);
    const toolStart = events.find((event) => (event.data as Record<string, any>).content_block?.type === 'tool_use')?.data as Record<string, any>;
    expect(toolStart).toEqual({ type: 'content_block_start', content_block: { type: 'tool_use', id: expect.any(String), name: 'get_weather', input: {} }, index: 1 });
    expect(events.at(-2)?.data).toEqual({
      type: 'message_delta',
      delta: { stop_reason: 'tool_use' },
      usage: { input_tokens: expect.any(Number), output_tokens: expect.any(Number) },
    });
    const json = events
      .map((event) => (event.data as Record<string, any>).delta)
      .filter((delta) => delta?.type === 'input_json_delta')
      .map((delta) => delta.partial_json)
      .join('');
    expect(JSON.parse(json)).toEqual({ city: expect.any(String) });
  });

  it('answers serving errors in Anthropic shape, request validation errors in its usual OpenAI shape', async () => {
    const sim = await useSimulator({ flavor: 'vllm', maxModelLen: 64 });
    const unknown = await postJson(sim, '/v1/messages', { ...anthropic, model: 'other', max_tokens: 4 });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ type: 'error', error: { type: 'NotFoundError', message: 'The model `other` does not exist.' } });
    const tooLong = await postJson(sim, '/v1/messages', { ...anthropic, max_tokens: 60 });
    expect(tooLong.status).toBe(400);
    expect(((await tooLong.json()) as Record<string, any>).type).toBe('error');
    const missing = await postJson(sim, '/v1/messages', anthropic);
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as Record<string, any>).error).toMatchObject({ type: 'Bad Request', param: 'body.max_tokens', code: 400 });
    // An engine failure on this surface is Anthropic-shaped too.
    const failing = await useSimulator({ flavor: 'vllm', failRate: 1, failMode: '500' });
    const failed = await postJson(failing, '/v1/messages', { ...anthropic, max_tokens: 4 });
    expect(failed.status).toBe(500);
    expect(await failed.json()).toEqual({ type: 'error', error: { type: 'InternalServerError', message: expect.any(String) } });
  });

  it('count_tokens: input_tokens and context_management, the same count the message reports', async () => {
    const sim = await useSimulator({ flavor: 'vllm' });
    const counted = (await (await postJson(sim, '/v1/messages/count_tokens', { ...anthropic, system: 'Be brief.' })).json()) as Record<string, any>;
    expect(counted).toEqual({ input_tokens: expect.any(Number), context_management: { original_input_tokens: counted.input_tokens } });
    const message = (await (await postJson(sim, '/v1/messages', { ...anthropic, system: 'Be brief.', max_tokens: 2 })).json()) as Record<string, any>;
    expect(message.usage.input_tokens).toBe(counted.input_tokens);
  });
});

describe('vLLM flavour: /v1/rerank', () => {
  it('ranks the documents by relevance, best first, cut to top_n, with the documents echoed', async () => {
    const sim = await useSimulator({ flavor: 'vllm' });
    const documents = ['Bananas are yellow.', 'A river is flowing water in a channel.', 'Paris is a city.'];
    const response = await postJson(sim, '/v1/rerank', { model: 'sim-model', query: 'What is a river of water?', documents, top_n: 2 });
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, any>;
    expect(Object.keys(body)).toEqual(['id', 'model', 'usage', 'results']);
    expect(body.id).toMatch(/^rerank-/);
    expect(body.results).toHaveLength(2);
    expect(body.results[0]).toEqual({ index: 1, document: { text: documents[1], multi_modal: null }, relevance_score: expect.any(Number) });
    expect(body.results[0].relevance_score).toBeGreaterThan(body.results[1].relevance_score);
    expect(body.results[0].relevance_score).toBeLessThanOrEqual(1);
    expect(body.usage.prompt_tokens).toBe(body.usage.total_tokens);
  });

  it('answers 400 like a vLLM without a reranker, and validates the request', async () => {
    const off = await useSimulator({ flavor: 'vllm', reranking: false });
    const refused = await postJson(off, '/v1/rerank', { model: 'sim-model', query: 'q', documents: ['d'] });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as Record<string, any>).error.message).toBe('The model does not support Rerank (Score) API');
    const sim = await useSimulator({ flavor: 'vllm' });
    const missing = await postJson(sim, '/v1/rerank', { model: 'sim-model', documents: ['d'] });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as Record<string, any>).error.param).toBe('body.query');
  });
});
