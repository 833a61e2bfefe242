// The surfaces beyond chat completions - OpenAI Responses, Anthropic Messages and
// count_tokens, rerank - and the chat options (n, logprobs), written once as checks
// that take a base URL, like llamacpp-shape.ts: test/e2e/conformance.test.ts runs them
// against a real llama-server and against the simulator's llama.cpp flavour.
// Only what is deterministic on both is asserted (shapes, key order, event order,
// counts that follow from max tokens, error wording); the tiny model never calls a
// tool nor reasons, so neither is checked here.

import { expect } from 'vitest';
import type { ConformanceCheck, LlamaTarget } from './llamacpp-shape.ts';

type Json = Record<string, any>;

async function postRead(target: LlamaTarget, path: string, body: unknown): Promise<{ status: number; headers: Headers; text: string }> {
  const response = await fetch(target.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** Named SSE events (`event:` + `data:` lines), the framing of the Responses and Messages streams. */
function namedEvents(text: string): Array<{ event: string; data: Json }> {
  expect(text.endsWith('\n\n'), 'SSE body ends with a blank line').toBe(true);
  return text
    .slice(0, -2)
    .split('\n\n')
    .map((block) => {
      const [eventLine, dataLine, ...rest] = block.split('\n');
      expect(rest, `two lines per event: ${block.slice(0, 80)}`).toEqual([]);
      expect(eventLine?.startsWith('event: ') && dataLine?.startsWith('data: ')).toBe(true);
      return { event: (eventLine ?? '').slice(7), data: JSON.parse((dataLine ?? '').slice(6)) as Json };
    });
}

const question = { instructions: 'You run a railway yard.', input: 'Where is wagon 4711?' };
const anthropic = { model: 'claude-x', system: 'You run a railway yard.', messages: [{ role: 'user', content: 'Where is wagon 4711?' }] };
const RESPONSE_USAGE_KEYS = ['input_tokens', 'output_tokens', 'total_tokens', 'input_tokens_details'];
const ANTHROPIC_USAGE_KEYS = ['cache_read_input_tokens', 'input_tokens', 'output_tokens'];

export const llamacppSurfaceConformance: ConformanceCheck[] = [
  {
    name: 'POST /v1/responses: the response object, one message item, usage; "completed" even when cut',
    run: async (target) => {
      const { status, text } = await postRead(target, '/v1/responses', { ...question, max_output_tokens: 4 });
      expect(status).toBe(200);
      const body = JSON.parse(text) as Json;
      expect(Object.keys(body)).toEqual(['completed_at', 'created_at', 'id', 'model', 'object', 'output', 'status', 'usage']);
      expect(body).toMatchObject({ model: target.alias, object: 'response', status: 'completed' });
      expect(body.id).toMatch(/^resp_[A-Za-z0-9]{32}$/);
      expect(body.output).toHaveLength(1);
      expect(Object.keys(body.output[0])).toEqual(['content', 'id', 'role', 'status', 'type']);
      expect(Object.keys(body.output[0].content[0])).toEqual(['type', 'annotations', 'logprobs', 'text']);
      expect(Object.keys(body.usage)).toEqual(RESPONSE_USAGE_KEYS);
      expect(body.usage.output_tokens).toBe(4);
      expect(body.usage.total_tokens).toBe(body.usage.input_tokens + 4);
    },
  },
  {
    name: 'POST /v1/responses stream: created, in_progress, item and part added, a delta per token, the done events, completed; no sequence_number',
    run: async (target) => {
      const { status, headers, text } = await postRead(target, '/v1/responses', { ...question, max_output_tokens: 3, stream: true });
      expect(status).toBe(200);
      expect(headers.get('content-type')).toBe('text/event-stream');
      const events = namedEvents(text);
      expect(events.map((event) => event.event)).toEqual([
        'response.created',
        'response.in_progress',
        'response.output_item.added',
        'response.content_part.added',
        'response.output_text.delta',
        'response.output_text.delta',
        'response.output_text.delta',
        'response.output_text.done',
        'response.content_part.done',
        'response.output_item.done',
        'response.completed',
      ]);
      for (const { event, data } of events) {
        expect(data.type).toBe(event);
        expect(data).not.toHaveProperty('sequence_number');
      }
      const completed = events.at(-1)?.data as Json;
      expect(Object.keys(completed)).toEqual(['type', 'response', 'timings']);
      expect(Object.keys(completed.response)).toEqual(['id', 'object', 'created_at', 'status', 'model', 'output', 'usage']);
      const deltas = events.filter((event) => event.event === 'response.output_text.delta').map((event) => event.data.delta as string);
      expect(events[7]?.data.text).toBe(deltas.join(''));
    },
  },
  {
    name: "Responses errors: no input 400, previous_response_id 400, in llama.cpp's own shape",
    run: async (target) => {
      const missing = await postRead(target, '/v1/responses', { model: 'x' });
      expect(missing.status).toBe(400);
      expect(JSON.parse(missing.text)).toEqual({ error: { code: 400, message: "'input' is required", type: 'invalid_request_error' } });
      const previous = await postRead(target, '/v1/responses', { model: 'x', input: 'hi', previous_response_id: 'resp_1' });
      expect(previous.status).toBe(400);
      expect(JSON.parse(previous.text).error.message).toBe("llama.cpp does not support 'previous_response_id'.");
    },
  },
  {
    name: 'POST /v1/messages: the Anthropic message, usage split into cached and new input, stop_reason max_tokens',
    run: async (target) => {
      const { status, text } = await postRead(target, '/v1/messages', { ...anthropic, max_tokens: 4 });
      expect(status).toBe(200);
      const body = JSON.parse(text) as Json;
      expect(Object.keys(body)).toEqual(['id', 'type', 'role', 'content', 'model', 'stop_reason', 'stop_sequence', 'usage']);
      expect(body).toMatchObject({ type: 'message', role: 'assistant', model: target.alias, stop_reason: 'max_tokens', stop_sequence: null });
      expect(body.id).toMatch(/^chatcmpl-[A-Za-z0-9]{32}$/);
      expect(body.content.map((block: Json) => Object.keys(block))).toEqual([['type', 'text']]);
      expect(Object.keys(body.usage)).toEqual(ANTHROPIC_USAGE_KEYS);
      expect(body.usage.output_tokens).toBe(4);
    },
  },
  {
    name: 'POST /v1/messages stream: message_start, one text block with a delta per token, message_delta, message_stop',
    run: async (target) => {
      const { status, text } = await postRead(target, '/v1/messages', { ...anthropic, max_tokens: 3, stream: true });
      expect(status).toBe(200);
      const events = namedEvents(text);
      // One delta per token, except that llama.cpp holds back a token ending inside a UTF-8 character (or with no
      // text) and sends it with the next: a sampled 3-token answer arrives in 1 to 3 deltas (seen: 2).
      const deltas = events.filter((event) => event.event === 'content_block_delta').length;
      expect(deltas).toBeGreaterThanOrEqual(1);
      expect(deltas).toBeLessThanOrEqual(3);
      expect(events.map((event) => event.event)).toEqual([
        'message_start',
        'content_block_start',
        ...Array.from({ length: deltas }, () => 'content_block_delta'),
        'content_block_stop',
        'message_delta',
        'message_stop',
      ]);
      for (const { event, data } of events) expect(data.type).toBe(event);
      expect(Object.keys(events[0]?.data.message ?? {})).toEqual(['id', 'type', 'role', 'content', 'model', 'stop_reason', 'stop_sequence', 'usage']);
      expect(events[0]?.data.message.usage.output_tokens).toBe(0);
      expect(events.at(-2)?.data).toEqual({ type: 'message_delta', delta: { stop_reason: 'max_tokens', stop_sequence: null }, usage: { output_tokens: 3 } });
    },
  },
  {
    name: 'count_tokens: the prompt the message is charged for; /v1/responses/input_tokens adds its object',
    run: async (target) => {
      const counted = JSON.parse((await postRead(target, '/v1/messages/count_tokens', anthropic)).text) as Json;
      expect(Object.keys(counted)).toEqual(['input_tokens']);
      const message = JSON.parse((await postRead(target, '/v1/messages', { ...anthropic, max_tokens: 1 })).text) as Json;
      expect(message.usage.input_tokens + message.usage.cache_read_input_tokens).toBe(counted.input_tokens);
      const responses = JSON.parse((await postRead(target, '/v1/responses/input_tokens', question)).text) as Json;
      expect(responses).toEqual({ input_tokens: expect.any(Number), object: 'response.input_tokens' });
    },
  },
  {
    name: 'Messages errors: no messages is a 500 server_error, not Anthropic-shaped',
    run: async (target) => {
      const { status, text } = await postRead(target, '/v1/messages', { model: 'x', max_tokens: 4 });
      expect(status).toBe(500);
      expect(JSON.parse(text)).toEqual({ error: { code: 500, message: "'messages' is required", type: 'server_error' } });
    },
  },
  {
    name: 'POST /v1/rerank without --reranking: 501 not_supported_error',
    run: async (target) => {
      const { status, text } = await postRead(target, '/v1/rerank', { query: 'q', documents: ['a', 'b'] });
      expect(status).toBe(501);
      expect(JSON.parse(text)).toEqual({ error: { code: 501, message: 'This server does not support reranking. Start it with `--reranking`', type: 'not_supported_error' } });
    },
  },
  {
    name: "chat n=2: two choices merged into the first result, whose usage is one choice's",
    run: async (target) => {
      const body = JSON.parse((await postRead(target, '/v1/chat/completions', { messages: anthropic.messages, max_tokens: 3, n: 2 })).text) as Json;
      expect(body.choices.map((choice: Json) => choice.index)).toEqual([0, 1]);
      expect(body.usage.completion_tokens).toBe(3);
    },
  },
  {
    name: 'chat logprobs: an entry per token {id, token, bytes, logprob, top_logprobs}',
    run: async (target) => {
      const body = JSON.parse((await postRead(target, '/v1/chat/completions', { messages: anthropic.messages, max_tokens: 3, logprobs: true, top_logprobs: 2 })).text) as Json;
      const content = body.choices[0].logprobs.content as Json[];
      expect(content).toHaveLength(3);
      for (const entry of content) {
        expect(Object.keys(entry)).toEqual(['id', 'token', 'bytes', 'logprob', 'top_logprobs']);
        expect(entry.top_logprobs).toHaveLength(2);
        expect(Object.keys(entry.top_logprobs[0])).toEqual(['id', 'token', 'bytes', 'logprob']);
      }
      expect(content.map((entry) => entry.token).join('')).toBe(body.choices[0].message.content);
    },
  },
];
