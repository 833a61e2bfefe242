// What a llama.cpp `llama-server` looks like from the outside, written once as
// checks that take a base URL. test/e2e/conformance.test.ts runs every check
// against a real llama-server AND the simulator's llama.cpp flavour, so the
// simulator cannot drift from the runtime it stands in for.
//
// Only what is deterministic on both is asserted: shapes, key order, statuses,
// headers, chunk order, counts that follow from max_tokens, error wording with
// numbers abstracted, metric families, and live load/queue/cancel behaviour.
// Generated text differs (random soup vs. the simulator's vocabulary).

import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';

/** A server to check: its URL and how it was started. */
export interface LlamaTarget {
  /** "real" or "simulator", for messages. */
  name: string;
  url: string;
  /** The alias (`-a`): the `model` of every answer. */
  alias: string;
  /** Parallel slots (`-np`). */
  slots: number;
  /** Context per slot. */
  ctx: number;
}

export interface ConformanceCheck {
  name: string;
  run: (target: LlamaTarget) => Promise<void>;
}

type Json = Record<string, any>;

// ---------------------------------------------------------------- helpers

async function get(target: LlamaTarget, path: string): Promise<{ status: number; headers: Headers; text: string }> {
  const response = await fetch(target.url + path, { signal: AbortSignal.timeout(10_000) });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

function post(target: LlamaTarget, path: string, body: unknown, signal?: AbortSignal): Promise<Response> {
  return fetch(target.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: signal ?? AbortSignal.timeout(30_000),
  });
}

async function postRead(target: LlamaTarget, path: string, body: unknown): Promise<{ status: number; headers: Headers; text: string }> {
  const response = await post(target, path, body);
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** Splits an SSE body into `data:` payloads; every block must be exactly one `data: ` line. */
function sse(text: string): Array<Json | '[DONE]'> {
  expect(text.endsWith('\n\n'), 'SSE body ends with a blank line').toBe(true);
  const blocks = text.slice(0, -2).split('\n\n');
  return blocks.map((block) => {
    expect(block.startsWith('data: ') && !block.includes('\n'), `one data line per event: ${block.slice(0, 80)}`).toBe(true);
    const payload = block.slice(6);
    return payload === '[DONE]' ? '[DONE]' : (JSON.parse(payload) as Json);
  });
}

function metricSamples(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const [name, value] = line.split(' ');
    samples.set(name as string, Number(value));
  }
  return samples;
}

async function gauges(target: LlamaTarget): Promise<{ processing: number; deferred: number; samples: Map<string, number> }> {
  const samples = metricSamples((await get(target, '/metrics')).text);
  return { processing: samples.get('llamacpp:requests_processing') ?? NaN, deferred: samples.get('llamacpp:requests_deferred') ?? NaN, samples };
}

async function busy(target: LlamaTarget): Promise<number> {
  return (JSON.parse((await get(target, '/slots')).text) as Json[]).filter((slot) => slot.is_processing === true).length;
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
  return performance.now() - started;
}

const ID = /^chatcmpl-[A-Za-z0-9]{32}$/;
const TIMINGS_KEYS = [
  'cache_n',
  'prompt_n',
  'prompt_ms',
  'prompt_per_token_ms',
  'prompt_per_second',
  'predicted_n',
  'predicted_ms',
  'predicted_per_token_ms',
  'predicted_per_second',
];
const USAGE_KEYS = ['completion_tokens', 'prompt_tokens', 'total_tokens', 'prompt_tokens_details'];

/** usage as llama.cpp computes it: prompt = processed + cached, completion = predicted. */
function expectUsageMatchesTimings(usage: Json, timings: Json, completion: number): void {
  expect(Object.keys(usage)).toEqual(USAGE_KEYS);
  expect(Object.keys(timings)).toEqual(TIMINGS_KEYS);
  expect(usage.completion_tokens).toBe(completion);
  expect(timings.predicted_n).toBe(completion);
  expect(usage.prompt_tokens).toBe(timings.prompt_n + timings.cache_n);
  expect(usage.prompt_tokens_details).toEqual({ cached_tokens: timings.cache_n });
  expect(usage.total_tokens).toBe(usage.prompt_tokens + usage.completion_tokens);
  for (const key of TIMINGS_KEYS) expect(typeof timings[key], `timings.${key}`).toBe('number');
}

const chat = (extra: Json = {}): Json => ({
  model: 'gpt-4o-mini', // ignored: llama-server answers with its alias
  messages: [
    { role: 'system', content: 'You run a railway yard.' },
    { role: 'user', content: 'Where is wagon 4711?' },
  ],
  max_tokens: 6,
  ...extra,
});

/** A prompt far over the slot context for either tokenizer (~1 token per "hello " for llama, 1.5 for the simulator). */
const overflowingMessages = (target: LlamaTarget) => [{ role: 'user', content: 'hello '.repeat(target.ctx + 200) }];

function expectLlamaHeaders(headers: Headers, contentType: string): void {
  expect(headers.get('content-type')).toBe(contentType);
  expect(headers.get('server')).toBe('llama.cpp');
  expect(headers.get('access-control-allow-origin')).toBe('');
}

// ---------------------------------------------------------------- the checks

export const llamacppConformance: ConformanceCheck[] = [
  {
    name: 'GET /health: 200 {"status":"ok"}',
    run: async (target) => {
      const { status, headers, text } = await get(target, '/health');
      expect(status).toBe(200);
      expect(text).toBe('{"status":"ok"}');
      expectLlamaHeaders(headers, 'application/json; charset=utf-8');
    },
  },
  {
    name: 'GET /v1/models: the alias, meta.n_ctx = per-slot context, an Ollama-style models list too',
    run: async (target) => {
      const { status, text } = await get(target, '/v1/models');
      expect(status).toBe(200);
      const body = JSON.parse(text) as Json;
      expect(Object.keys(body)).toEqual(['models', 'object', 'data']);
      expect(body.object).toBe('list');
      expect(body.data).toHaveLength(1);
      const entry = body.data[0] as Json;
      expect(Object.keys(entry)).toEqual(['id', 'aliases', 'tags', 'object', 'created', 'owned_by', 'meta']);
      expect(entry).toMatchObject({ id: target.alias, object: 'model', owned_by: 'llamacpp' });
      expect(Object.keys(entry.meta)).toEqual(['vocab_type', 'n_vocab', 'n_ctx', 'n_ctx_train', 'n_embd', 'n_params', 'size', 'ftype']);
      expect(entry.meta.n_ctx).toBe(target.ctx);
      expect(typeof entry.created).toBe('number');
      expect(body.models[0]).toMatchObject({ name: target.alias, model: target.alias });
    },
  },
  {
    name: 'GET /props: total_slots = -np, per-slot n_ctx',
    run: async (target) => {
      const body = JSON.parse((await get(target, '/props')).text) as Json;
      expect(body.total_slots).toBe(target.slots);
      expect(body.default_generation_settings.n_ctx).toBe(target.ctx);
      expect(body.build_info).toBe('b1-de3ff81');
    },
  },
  {
    name: 'GET /slots when idle: one entry per slot, none processing',
    run: async (target) => {
      await until(async () => (await busy(target)) === 0, 'idle slots');
      const body = JSON.parse((await get(target, '/slots')).text) as Json[];
      expect(body).toHaveLength(target.slots);
      for (const [index, slot] of body.entries()) expect(slot).toMatchObject({ id: index, n_ctx: target.ctx, speculative: false, is_processing: false });
    },
  },
  {
    name: 'GET /metrics: the llamacpp:* families, with their types, in order; idle gauges 0',
    run: async (target) => {
      const { status, headers, text } = await get(target, '/metrics');
      expect(status).toBe(200);
      expect(headers.get('content-type')).toBe('text/plain; version=0.0.4');
      const types = text
        .split('\n')
        .filter((line) => line.startsWith('# TYPE llamacpp:'))
        .map((line) => line.slice('# TYPE '.length));
      expect(types).toEqual([
        'llamacpp:prompt_tokens_total counter',
        'llamacpp:prompt_tokens_cached_total counter',
        'llamacpp:prompt_seconds_total counter',
        'llamacpp:tokens_predicted_total counter',
        'llamacpp:tokens_predicted_seconds_total counter',
        'llamacpp:n_decode_total counter',
        'llamacpp:n_tokens_max counter',
        'llamacpp:spec_decode_num_draft_tokens_total counter',
        'llamacpp:spec_decode_num_accepted_tokens_total counter',
        'llamacpp:spec_decode_num_drafts_total counter',
        'llamacpp:prompt_tokens_seconds gauge',
        'llamacpp:predicted_tokens_seconds gauge',
        'llamacpp:requests_processing gauge',
        'llamacpp:requests_deferred gauge',
        'llamacpp:n_busy_slots_per_decode gauge',
      ]);
      await until(async () => {
        const { processing, deferred } = await gauges(target);
        return processing === 0 && deferred === 0;
      }, 'idle gauges');
    },
  },
  {
    name: 'chat, non-streaming: key order, alias as model, usage = timings, no logprobs key',
    run: async (target) => {
      const { status, headers, text } = await postRead(target, '/v1/chat/completions', chat());
      expect(status).toBe(200);
      expectLlamaHeaders(headers, 'application/json; charset=utf-8');
      const body = JSON.parse(text) as Json;
      expect(Object.keys(body)).toEqual(['choices', 'created', 'model', 'system_fingerprint', 'object', 'usage', 'id', 'timings']);
      expect(body).toMatchObject({ model: target.alias, object: 'chat.completion', system_fingerprint: 'b1-de3ff81' });
      expect(body.id).toMatch(ID);
      expect(body.choices).toHaveLength(1);
      expect(Object.keys(body.choices[0])).toEqual(['finish_reason', 'index', 'message']);
      expect(body.choices[0]).toMatchObject({ finish_reason: 'length', index: 0 });
      expect(Object.keys(body.choices[0].message)).toEqual(['role', 'content']);
      expect(body.choices[0].message.role).toBe('assistant');
      expect(typeof body.choices[0].message.content).toBe('string');
      expectUsageMatchesTimings(body.usage, body.timings, 6);
    },
  },
  {
    name: 'chat, the same prompt again: the prefix cache shows in cached_tokens and timings.cache_n',
    run: async (target) => {
      const body = chat({ messages: [{ role: 'user', content: `A conversation to repeat, ${target.name}.` }] });
      await postRead(target, '/v1/chat/completions', body);
      const again = JSON.parse((await postRead(target, '/v1/chat/completions', body)).text) as Json;
      expect(again.usage.prompt_tokens_details.cached_tokens).toBeGreaterThan(0);
      expectUsageMatchesTimings(again.usage, again.timings, 6);
    },
  },
  {
    name: 'chat stream without include_usage: role chunk (content null), content chunks, empty-delta finish chunk with timings, [DONE]; no usage key anywhere',
    run: async (target) => {
      const response = await post(target, '/v1/chat/completions', chat({ stream: true, max_tokens: 8 }));
      expect(response.status).toBe(200);
      expectLlamaHeaders(response.headers, 'text/event-stream');
      const events = sse(await response.text());
      expect(events.at(-1)).toBe('[DONE]');
      const chunks = events.slice(0, -1) as Json[];
      expect(chunks.every((chunk) => typeof chunk === 'object')).toBe(true);
      for (const chunk of chunks) {
        expect(chunk).toMatchObject({ model: target.alias, object: 'chat.completion.chunk', system_fingerprint: 'b1-de3ff81' });
        expect(chunk.id).toBe(chunks[0]?.id);
        expect('usage' in chunk).toBe(false);
      }
      expect(chunks[0]?.id).toMatch(ID);
      expect(chunks[0]?.choices).toEqual([{ finish_reason: null, index: 0, delta: { role: 'assistant', content: null } }]);
      const content = chunks.slice(1, -1);
      expect(content.length).toBeGreaterThanOrEqual(1);
      expect(content.length).toBeLessThanOrEqual(8); // one per token (fewer if a token is half a UTF-8 character)
      for (const chunk of content) {
        expect(chunk.choices).toHaveLength(1);
        expect(chunk.choices[0]).toMatchObject({ finish_reason: null, index: 0 });
        expect(Object.keys(chunk.choices[0].delta)).toEqual(['content']);
        expect(typeof chunk.choices[0].delta.content).toBe('string');
        expect('timings' in chunk).toBe(false);
      }
      const finish = chunks.at(-1) as Json;
      expect(finish.choices).toEqual([{ finish_reason: 'length', index: 0, delta: {} }]);
      expect(Object.keys(finish.timings)).toEqual(TIMINGS_KEYS);
      expect(finish.timings.predicted_n).toBe(8);
    },
  },
  {
    name: 'chat stream with include_usage: the finish chunk loses timings; a last chunk with choices [] carries usage and timings',
    run: async (target) => {
      const response = await post(target, '/v1/chat/completions', chat({ stream: true, max_tokens: 5, stream_options: { include_usage: true } }));
      const events = sse(await response.text());
      expect(events.at(-1)).toBe('[DONE]');
      const chunks = events.slice(0, -1) as Json[];
      const usageChunk = chunks.at(-1) as Json;
      const finish = chunks.at(-2) as Json;
      expect(finish.choices).toEqual([{ finish_reason: 'length', index: 0, delta: {} }]);
      expect('timings' in finish).toBe(false);
      expect('usage' in finish).toBe(false);
      expect(Object.keys(usageChunk)).toEqual(['choices', 'created', 'id', 'model', 'system_fingerprint', 'object', 'usage', 'timings']);
      expect(usageChunk.choices).toEqual([]);
      expectUsageMatchesTimings(usageChunk.usage, usageChunk.timings, 5);
      // usage only on the last chunk
      expect(chunks.slice(0, -1).some((chunk) => 'usage' in chunk)).toBe(false);
    },
  },
  {
    name: 'text completion, non-streaming: text_completion with a chatcmpl- id and logprobs null',
    run: async (target) => {
      const { status, text } = await postRead(target, '/v1/completions', { model: 'x', prompt: 'Once upon a time', max_tokens: 5 });
      expect(status).toBe(200);
      const body = JSON.parse(text) as Json;
      expect(Object.keys(body)).toEqual(['choices', 'created', 'model', 'system_fingerprint', 'object', 'usage', 'id', 'timings']);
      expect(body).toMatchObject({ model: target.alias, object: 'text_completion' });
      expect(body.id).toMatch(ID);
      expect(Object.keys(body.choices[0])).toEqual(['text', 'index', 'logprobs', 'finish_reason']);
      expect(body.choices[0]).toMatchObject({ index: 0, logprobs: null, finish_reason: 'length' });
      expectUsageMatchesTimings(body.usage, body.timings, 5);
    },
  },
  {
    name: 'text completion stream: usage and timings ride on the finish chunk even without stream_options',
    run: async (target) => {
      const response = await post(target, '/v1/completions', { model: 'x', prompt: 'Once upon a time', max_tokens: 4, stream: true });
      expectLlamaHeaders(response.headers, 'text/event-stream');
      const events = sse(await response.text());
      expect(events.at(-1)).toBe('[DONE]');
      const chunks = events.slice(0, -1) as Json[];
      for (const chunk of chunks) expect(chunk).toMatchObject({ model: target.alias, object: 'text_completion' });
      const finish = chunks.at(-1) as Json;
      expect(finish.choices).toEqual([{ text: '', index: 0, logprobs: null, finish_reason: 'length' }]);
      expectUsageMatchesTimings(finish.usage, finish.timings, 4);
      expect(chunks.slice(0, -1).every((chunk) => !('usage' in chunk) && chunk.choices[0].finish_reason === null)).toBe(true);
    },
  },
  {
    name: 'counters: tokens_predicted_total and prompt tokens (processed + cached) grow by what usage says',
    run: async (target) => {
      const before = (await gauges(target)).samples;
      const body = JSON.parse(
        (await postRead(target, '/v1/chat/completions', chat({ max_tokens: 7, messages: [{ role: 'user', content: `count me ${Date.now()}` }] }))).text,
      ) as Json;
      const after = (await gauges(target)).samples;
      const delta = (name: string) => (after.get(name) ?? NaN) - (before.get(name) ?? NaN);
      expect(delta('llamacpp:tokens_predicted_total')).toBe(7);
      expect(delta('llamacpp:prompt_tokens_total') + delta('llamacpp:prompt_tokens_cached_total')).toBe(body.usage.prompt_tokens);
      expect(delta('llamacpp:prompt_tokens_cached_total')).toBe(body.usage.prompt_tokens_details.cached_tokens);
    },
  },
  {
    name: 'prompt over the slot context: 400 exceed_context_size_error, plain JSON even with stream: true, Connection: close',
    run: async (target) => {
      for (const stream of [false, true]) {
        const { status, headers, text } = await postRead(target, '/v1/chat/completions', chat({ messages: overflowingMessages(target), stream }));
        expect(status).toBe(400);
        expectLlamaHeaders(headers, 'application/json; charset=utf-8');
        expect(headers.get('connection')).toBe('close');
        const body = JSON.parse(text) as Json;
        expect(Object.keys(body.error)).toEqual(['code', 'message', 'type', 'n_prompt_tokens', 'n_ctx']);
        expect(body.error).toMatchObject({ code: 400, type: 'exceed_context_size_error', n_ctx: target.ctx });
        expect(body.error.n_prompt_tokens).toBeGreaterThan(target.ctx);
        expect(body.error.message).toBe(`request (${body.error.n_prompt_tokens} tokens) exceeds the available context size (${target.ctx} tokens), try increasing it`);
      }
    },
  },
  {
    name: 'malformed JSON: 500 server_error with the nlohmann parse message, Connection: close',
    run: async (target) => {
      const { status, headers, text } = await postRead(target, '/v1/chat/completions', '{"model": "x", "messages": [');
      expect(status).toBe(500);
      expect(headers.get('connection')).toBe('close');
      expect(JSON.parse(text)).toEqual({
        error: {
          code: 500,
          message: "[json.exception.parse_error.101] parse error at line 1, column 29: syntax error while parsing value - unexpected end of input; expected '[', '{', or a literal",
          type: 'server_error',
        },
      });
    },
  },
  {
    name: 'missing messages: 400 invalid_request_error "\'messages\' is required"',
    run: async (target) => {
      const { status, text } = await postRead(target, '/v1/chat/completions', { model: 'x' });
      expect(status).toBe(400);
      expect(JSON.parse(text)).toEqual({ error: { code: 400, message: "'messages' is required", type: 'invalid_request_error' } });
    },
  },
  {
    name: 'unknown path: 404 not_found_error "File Not Found"',
    run: async (target) => {
      const { status, text } = await get(target, '/v1/nothing-here');
      expect(status).toBe(404);
      expect(JSON.parse(text)).toEqual({ error: { message: 'File Not Found', type: 'not_found_error', code: 404 } });
    },
  },
  {
    name: 'load: streams beyond the slots wait without headers, counted in requests_deferred; busy slots in /slots and requests_processing',
    run: async (target) => {
      const controllers = Array.from({ length: target.slots + 1 }, () => new AbortController());
      const body = chat({ stream: true, max_tokens: Math.min(3000, target.ctx - 100) });
      try {
        const running: Response[] = [];
        for (let index = 0; index < target.slots; index++) running.push(await post(target, '/v1/chat/completions', body, controllers[index]?.signal));
        expect(running.map((response) => response.status)).toEqual(Array(target.slots).fill(200));
        let queuedHeaders = false;
        const queued = post(target, '/v1/chat/completions', body, controllers[target.slots]?.signal).then((response) => {
          queuedHeaders = true;
          return response;
        });
        queued.catch(() => undefined);
        await until(async () => {
          const { processing, deferred } = await gauges(target);
          return processing === target.slots && deferred === 1;
        }, `requests_processing = ${target.slots} and requests_deferred = 1`);
        expect(await busy(target)).toBe(target.slots);
        const slots = JSON.parse((await get(target, '/slots')).text) as Json[];
        for (const slot of slots) {
          expect(slot.is_processing).toBe(true);
          expect(typeof slot.id_task).toBe('number');
          expect(slot.next_token[0].n_decoded).toBeGreaterThanOrEqual(0);
        }
        await sleep(200);
        expect(queuedHeaders, 'a queued stream gets no headers while every slot is busy').toBe(false);
        // one running client leaves: the queued stream takes its slot and gets its headers
        controllers[0]?.abort();
        const waited = await until(async () => queuedHeaders, 'the queued stream to start');
        expect(waited).toBeLessThan(1_000);
        expect((await queued).status).toBe(200);
        await until(async () => (await gauges(target)).deferred === 0, 'requests_deferred back to 0');
      } finally {
        for (const controller of controllers) controller.abort();
      }
      const freed = await until(async () => (await busy(target)) === 0, 'every slot to be free after the clients left');
      expect(freed).toBeLessThan(1_000);
      await until(async () => (await gauges(target)).processing === 0, 'requests_processing back to 0');
    },
  },
  {
    name: 'connections: kept alive after a JSON answer, but closed by the server right after a streamed answer (which still says Keep-Alive)',
    run: async (target) => {
      const { port, hostname } = new URL(target.url);
      const exchange = async (stream: boolean) => {
        const socket = net.connect(Number(port), hostname);
        await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
        socket.on('error', () => undefined);
        const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())));
        let raw = '';
        const complete = new Promise<number>((resolve) => {
          socket.on('data', (chunk: Buffer) => {
            raw += chunk.toString('utf8');
            const end = raw.indexOf('\r\n\r\n');
            if (end < 0) return;
            const head = raw.slice(0, end);
            const rest = raw.slice(end + 4);
            const length = /content-length: (\d+)/i.exec(head);
            if ((stream && rest.endsWith('0\r\n\r\n')) || (length && Buffer.byteLength(rest) >= Number(length[1]))) resolve(performance.now());
          });
        });
        const body = JSON.stringify(chat({ stream, max_tokens: 3 }));
        socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
        const doneAt = await complete;
        const head = raw.slice(0, raw.indexOf('\r\n\r\n')).toLowerCase();
        const closedAt = await Promise.race([closed, sleep(1_000).then(() => undefined)]);
        socket.destroy();
        return { head, closedAfterMs: closedAt === undefined ? undefined : closedAt - doneAt };
      };
      const json = await exchange(false);
      expect(json.head).toContain('keep-alive: timeout=5');
      expect(json.closedAfterMs, 'a JSON answer leaves the connection open').toBeUndefined();
      const streamed = await exchange(true);
      expect(streamed.head).toContain('transfer-encoding: chunked');
      expect(streamed.head).toContain('keep-alive: timeout=5');
      expect(streamed.head).not.toContain('connection: close');
      expect(streamed.closedAfterMs ?? Number.POSITIVE_INFINITY, 'ms until the server closed the connection after a streamed answer (open after 1 s = Infinity)').toBeLessThan(500);
    },
  },
  {
    name: 'a streaming client that leaves frees its slot within a second',
    run: async (target) => {
      const controller = new AbortController();
      const response = await post(target, '/v1/chat/completions', chat({ stream: true, max_tokens: Math.min(3000, target.ctx - 100) }), controller.signal);
      const reader = response.body!.getReader();
      await reader.read();
      expect(await busy(target)).toBe(1);
      controller.abort();
      const freed = await until(async () => (await busy(target)) === 0, 'the slot to be free');
      expect(freed).toBeLessThan(1_000);
    },
  },
];
