/**
 * The response cache through a real gateway on a real redis-server, driven by
 * the official openai SDK: miss then hit, bypass and Cache-Control, stream
 * replay of cached answers both ways, per-model mode off, single flight and
 * the cache metrics.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { cacheKey } from '../../../src/cache/key.ts';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { startSim, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.ts';
import { startRedis, type TestRedis } from '../../helpers/redis.ts';
import { dumpRedis, getJson, metricValue, redisSection, simBackend, simModel, patientCache, abortingClient } from './harness.ts';

let redis: TestRedis;
let sim: Simulator;
let slow: Simulator;
let paced: Simulator;
let gateway: TestGateway;
let client: OpenAI;

beforeAll(async () => {
  redis = await startRedis();
  [sim, slow, paced] = await Promise.all([
    startSim({ flavor: 'vllm' }),
    startSim({ flavor: 'llamacpp', ttftMs: 300, maxConcurrency: 32 }),
    startSim({ flavor: 'vllm', tokensPerSecond: 50 }),
  ]);
  gateway = await startTestGateway({
    backends: [simBackend('sim', sim), simBackend('slow', slow), simBackend('paced', paced)],
    models: [
      simModel('chat', 'sim', sim, { aliases: ['chat-alias'] }),
      simModel('chat-off', 'sim', sim, { cache: { mode: 'off' } }),
      simModel('chat-slow', 'slow', slow),
      simModel('chat-paced', 'paced', paced),
      simModel('embed', 'sim', sim),
    ],
    redis: redisSection(redis.url),
    cache: patientCache,
  });
  client = gateway.client();
});

afterAll(async () => {
  await gateway?.close();
  await Promise.all([sim?.close(), slow?.close(), paced?.close()]);
  await redis?.stop();
});

/** A prompt no other test uses. */
const fresh = (label: string) => `${label} ${randomUUID()}`;
const upstreamCalls = (simulator: Simulator = sim) => simulator.stats().requests;
const cacheKeys = async () => (await dumpRedis(redis.url)).filter((entry) => /^swy:cache:[0-9a-f]{64}$/.test(entry.key)).length;

async function chat(content: string, extra: Partial<OpenAI.Chat.ChatCompletionCreateParamsNonStreaming> = {}, headers: Record<string, string> = {}) {
  const { data, response } = await client.chat.completions
    .create({ model: 'chat', messages: [{ role: 'user', content }], temperature: 0, max_tokens: 8, ...extra }, { headers })
    .withResponse();
  return { data, cache: response.headers.get('x-switchyard-cache'), age: response.headers.get('age'), headers: response.headers };
}

async function streamChat(content: string, extra: Partial<OpenAI.Chat.ChatCompletionCreateParamsStreaming> = {}) {
  const { data: stream, response } = await client.chat.completions
    .create({ model: 'chat', messages: [{ role: 'user', content }], temperature: 0, max_tokens: 8, stream: true, ...extra })
    .withResponse();
  const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
  return { chunks, text, cache: response.headers.get('x-switchyard-cache'), age: response.headers.get('age'), contentType: response.headers.get('content-type') };
}

describe('cache hit and miss through the openai SDK', () => {
  it('misses, then hits with the same answer, an age header and no upstream call', async () => {
    const prompt = fresh('hit-miss');
    const before = upstreamCalls();
    const first = await chat(prompt);
    expect(first.cache).toBe('MISS');
    expect(first.age).toBeNull();
    expect(upstreamCalls()).toBe(before + 1);

    const second = await chat(prompt);
    expect(second.cache).toBe('HIT');
    expect(second.age).toMatch(/^\d+$/);
    expect(Number.isInteger(Number(second.age))).toBe(true);
    expect(second.data.choices[0]?.message.content).toBe(first.data.choices[0]?.message.content);
    expect(second.data.choices[0]?.message.content?.length).toBeGreaterThan(0);
    expect(second.data.usage).toEqual(first.data.usage);
    expect(second.data.model).toBe('chat');
    expect(upstreamCalls()).toBe(before + 1);

    // age counts from when the answer was produced: backdate the stored entry by 42 s
    const storageKey = `swy:cache:${cacheKey('default', 'chat', 'chat', { messages: [{ role: 'user', content: prompt }], temperature: 0, max_tokens: 8 })}`;
    const raw = new Redis(redis.url);
    try {
      const stored = JSON.parse((await raw.get(storageKey)) ?? 'null') as { createdAt: number };
      expect(stored).not.toBeNull();
      await raw.set(storageKey, JSON.stringify({ ...stored, createdAt: stored.createdAt - 42_000 }), 'KEEPTTL');
    } finally {
      raw.disconnect();
    }
    const third = await chat(prompt);
    expect(third.cache).toBe('HIT');
    expect(Number(third.age)).toBeGreaterThanOrEqual(42);
    expect(Number(third.age)).toBeLessThan(50);
  });

  it('a hit carries the model name the client asked for (alias)', async () => {
    const prompt = fresh('alias');
    await chat(prompt);
    const viaAlias = await chat(prompt, { model: 'chat-alias' });
    expect(viaAlias.cache).toBe('HIT');
    expect(viaAlias.data.model).toBe('chat-alias');
  });

  it('key order and `user` do not change the key: a reordered request hits', async () => {
    const prompt = fresh('order');
    await chat(prompt, { max_tokens: 6 });
    const before = upstreamCalls();
    const reordered = await gateway
      .client()
      .chat.completions.create({ max_tokens: 6, temperature: 0, messages: [{ content: prompt, role: 'user' }], model: 'chat', user: 'someone-else' })
      .withResponse();
    expect(reordered.response.headers.get('x-switchyard-cache')).toBe('HIT');
    expect(upstreamCalls()).toBe(before);
    // ...but a field that changes the output does
    expect((await chat(prompt, { max_tokens: 7 })).cache).toBe('MISS');
  });

  it('a request with a seed (no temperature) is cacheable', async () => {
    const prompt = fresh('seed');
    const body = { model: 'chat', messages: [{ role: 'user' as const, content: prompt }], seed: 42, max_tokens: 5 };
    const first = await client.chat.completions.create(body).withResponse();
    const second = await client.chat.completions.create(body).withResponse();
    expect(first.response.headers.get('x-switchyard-cache')).toBe('MISS');
    expect(second.response.headers.get('x-switchyard-cache')).toBe('HIT');
  });

  it('non-deterministic requests (temperature 0.7, no seed) bypass and are not stored', async () => {
    const prompt = fresh('sampled');
    const keysBefore = await cacheKeys();
    const before = upstreamCalls();
    const first = await chat(prompt, { temperature: 0.7 });
    const second = await chat(prompt, { temperature: 0.7 });
    expect(first.cache).toBe('BYPASS');
    expect(second.cache).toBe('BYPASS');
    expect(second.age).toBeNull();
    expect(upstreamCalls()).toBe(before + 2);
    expect(await cacheKeys()).toBe(keysBefore);
    // n > 1 is not cached either
    expect((await chat(prompt, { n: 2 })).cache).toBe('BYPASS');
  });

  it('Cache-Control: no-store bypasses an existing entry and stores nothing', async () => {
    const cached = fresh('no-store-existing');
    await chat(cached);
    const before = upstreamCalls();
    const bypassed = await chat(cached, {}, { 'cache-control': 'no-store' });
    expect(bypassed.cache).toBe('BYPASS');
    expect(upstreamCalls()).toBe(before + 1);

    const fresher = fresh('no-store-new');
    const keysBefore = await cacheKeys();
    expect((await chat(fresher, {}, { 'Cache-Control': 'no-store' })).cache).toBe('BYPASS');
    expect(await cacheKeys()).toBe(keysBefore);
    expect((await chat(fresher)).cache).toBe('MISS'); // nothing was stored
  });

  it('Cache-Control: no-cache goes upstream (MISS) and stores the fresh answer', async () => {
    const cached = fresh('no-cache-existing');
    await chat(cached);
    const before = upstreamCalls();
    const refreshed = await chat(cached, {}, { 'cache-control': 'no-cache' });
    expect(refreshed.cache).toBe('MISS');
    expect(upstreamCalls()).toBe(before + 1);
    const after = await chat(cached);
    expect(after.cache).toBe('HIT');
    expect(upstreamCalls()).toBe(before + 1);

    const fresher = fresh('no-cache-new');
    expect((await chat(fresher, {}, { 'cache-control': 'no-cache' })).cache).toBe('MISS');
    const hit = await chat(fresher);
    expect(hit.cache).toBe('HIT');
    expect(upstreamCalls()).toBe(before + 2);
  });

  it('per-model cache.mode off: always BYPASS, always upstream', async () => {
    const prompt = fresh('mode-off');
    const before = upstreamCalls();
    for (let i = 0; i < 2; i++) {
      const { response } = await client.chat.completions.create({ model: 'chat-off', messages: [{ role: 'user', content: prompt }], temperature: 0, max_tokens: 4 }).withResponse();
      expect(response.headers.get('x-switchyard-cache')).toBe('BYPASS');
    }
    expect(upstreamCalls()).toBe(before + 2);
  });

  it('embeddings are cached', async () => {
    const input = fresh('embed');
    const before = upstreamCalls();
    const first = await client.embeddings.create({ model: 'embed', input }).withResponse();
    const second = await client.embeddings.create({ model: 'embed', input }).withResponse();
    expect(first.response.headers.get('x-switchyard-cache')).toBe('MISS');
    expect(second.response.headers.get('x-switchyard-cache')).toBe('HIT');
    expect(second.data.data[0]?.embedding).toEqual(first.data.data[0]?.embedding);
    expect(upstreamCalls()).toBe(before + 1);
  });
});

describe('stream replay', () => {
  it('a streamed request is answered from a cached non-streamed answer, usage only when asked', async () => {
    const prompt = fresh('json-then-stream');
    const json = await chat(prompt);
    expect(json.cache).toBe('MISS');
    const before = upstreamCalls();

    const plain = await streamChat(prompt);
    expect(plain.cache).toBe('HIT');
    expect(plain.contentType).toContain('text/event-stream');
    expect(plain.age).toMatch(/^\d+$/);
    expect(plain.text).toBe(json.data.choices[0]?.message.content);
    expect(plain.chunks.length).toBeGreaterThan(2);
    expect(plain.chunks.every((chunk) => chunk.object === 'chat.completion.chunk' && chunk.model === 'chat')).toBe(true);
    expect(plain.chunks.some((chunk) => chunk.usage)).toBe(false);
    expect(plain.chunks.every((chunk) => chunk.choices.length === 1)).toBe(true);
    expect(plain.chunks.at(-1)?.choices[0]?.finish_reason).toBe(json.data.choices[0]?.finish_reason);

    const withUsage = await streamChat(prompt, { stream_options: { include_usage: true } });
    expect(withUsage.cache).toBe('HIT');
    expect(withUsage.text).toBe(plain.text);
    const last = withUsage.chunks.at(-1);
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toEqual(json.data.usage);
    expect(withUsage.chunks.slice(0, -1).every((chunk) => chunk.usage === null || chunk.usage === undefined)).toBe(true);
    expect(upstreamCalls()).toBe(before);
  });

  it('a non-streamed request is answered from a cached streamed answer', async () => {
    const prompt = fresh('stream-then-json');
    const streamed = await streamChat(prompt, { max_tokens: 9 });
    expect(streamed.cache).toBe('MISS');
    expect(streamed.chunks.some((chunk) => chunk.usage)).toBe(false);
    const before = upstreamCalls();

    const json = await chat(prompt, { max_tokens: 9 });
    expect(json.cache).toBe('HIT');
    expect(json.data.object).toBe('chat.completion');
    expect(json.data.model).toBe('chat');
    expect(json.data.choices[0]?.message.content).toBe(streamed.text);
    expect(json.data.choices[0]?.message.role).toBe('assistant');
    expect(json.data.usage?.completion_tokens).toBe(9);

    // and back to a stream, with usage this time
    const again = await streamChat(prompt, { max_tokens: 9, stream_options: { include_usage: true } });
    expect(again.cache).toBe('HIT');
    expect(again.text).toBe(streamed.text);
    expect(again.chunks.at(-1)?.usage?.completion_tokens).toBe(9);
    expect(upstreamCalls()).toBe(before);
  });

  it('a stream the client cut short is not stored', async () => {
    const content = fresh('cut-short');
    // undici's own fetch: Node's bundled fetch leaves a spare connection after an abort (see abortingClient)
    const { client: cutter, close } = abortingClient(gateway);
    onTestFinished(close);
    const body = { model: 'chat-paced', messages: [{ role: 'user' as const, content }], temperature: 0, max_tokens: 40 };
    const { data: stream, response } = await cutter.chat.completions.create({ ...body, stream: true }).withResponse();
    expect(response.headers.get('x-switchyard-cache')).toBe('MISS');
    let pieces = 0;
    for await (const chunk of stream) if (chunk.choices[0]?.delta.content && ++pieces >= 3) break;
    await waitFor(() => gateway.logs.some((line) => line.includes('"clientClosed":true') && line.includes('"model":"chat-paced"')), 10_000, 'the cut stream to be reported');
    paced.update({ tokensPerSecond: 0 });
    try {
      const whole = await client.chat.completions.create(body).withResponse();
      expect(whole.response.headers.get('x-switchyard-cache')).toBe('MISS');
      expect(whole.data.usage?.completion_tokens).toBe(40);
      expect((await client.chat.completions.create(body).withResponse()).response.headers.get('x-switchyard-cache')).toBe('HIT');
    } finally {
      paced.update({ tokensPerSecond: 50 });
    }
  });

  it('a stream the upstream broke is not stored', async () => {
    const content = fresh('broken-stream');
    const body = { model: 'chat-paced', messages: [{ role: 'user' as const, content }], temperature: 0, max_tokens: 10 };
    paced.update({ failRate: 1, failMode: 'die-mid-stream', tokensPerSecond: 0 });
    let broken: string;
    try {
      const answer = await fetch(`${gateway.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...body, stream: true }),
      });
      expect(answer.headers.get('x-switchyard-cache')).toBe('MISS');
      broken = await answer.text();
    } finally {
      paced.update({ failRate: 0, tokensPerSecond: 50 });
    }
    expect(broken).toContain('"error"');
    expect(broken).not.toContain('data: [DONE]');
    const after = await client.chat.completions.create(body).withResponse();
    expect(after.response.headers.get('x-switchyard-cache')).toBe('MISS');
    expect(after.data.usage?.completion_tokens).toBe(10);
  });

  it('completions replay as text_completion chunks', async () => {
    const prompt = fresh('completion');
    const first = await client.completions.create({ model: 'chat', prompt, temperature: 0, max_tokens: 6 }).withResponse();
    expect(first.response.headers.get('x-switchyard-cache')).toBe('MISS');
    const { data: stream, response } = await client.completions
      .create({ model: 'chat', prompt, temperature: 0, max_tokens: 6, stream: true, stream_options: { include_usage: true } })
      .withResponse();
    expect(response.headers.get('x-switchyard-cache')).toBe('HIT');
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.map((chunk) => chunk.choices[0]?.text ?? '').join('')).toBe(first.data.choices[0]?.text);
    expect(chunks.at(-1)?.usage).toEqual(first.data.usage);
  });
});

describe('single flight', () => {
  it('20 concurrent identical requests make exactly one upstream call and get the same answer', async () => {
    const prompt = fresh('single-flight');
    const before = upstreamCalls(slow);
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        client.chat.completions.create({ model: 'chat-slow', messages: [{ role: 'user', content: prompt }], temperature: 0, max_tokens: 8 }).withResponse(),
      ),
    );
    expect(upstreamCalls(slow)).toBe(before + 1);
    const contents = new Set(answers.map(({ data }) => data.choices[0]?.message.content));
    expect(contents.size).toBe(1);
    expect([...contents][0]?.length).toBeGreaterThan(0);
    const results = answers.map(({ response }) => response.headers.get('x-switchyard-cache'));
    expect(results.filter((result) => result === 'MISS')).toHaveLength(1);
    expect(results.filter((result) => result === 'HIT')).toHaveLength(19);
  });
});

describe('single flight, mixed', () => {
  it('streaming and non-streaming clients of one request share the one upstream call', async () => {
    const content = fresh('single-flight-mixed');
    const before = upstreamCalls(slow);
    const base = { model: 'chat-slow', messages: [{ role: 'user' as const, content }], temperature: 0, max_tokens: 8 };
    const json = Array.from({ length: 5 }, () => client.chat.completions.create(base));
    const streams = Array.from({ length: 5 }, async (_, i) => {
      const stream = await client.chat.completions.create({ ...base, stream: true, ...(i % 2 ? { stream_options: { include_usage: true } } : {}) });
      const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
      for await (const chunk of stream) chunks.push(chunk);
      return { text: chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join(''), usage: chunks.at(-1)?.usage, wantsUsage: i % 2 === 1 };
    });
    const [answers, streamed] = await Promise.all([Promise.all(json), Promise.all(streams)]);
    expect(upstreamCalls(slow)).toBe(before + 1);
    const text = answers[0]?.choices[0]?.message.content;
    expect(text?.length).toBeGreaterThan(0);
    for (const answer of answers) expect(answer.choices[0]?.message.content).toBe(text);
    for (const result of streamed) {
      expect(result.text).toBe(text);
      if (result.wantsUsage) expect(result.usage?.completion_tokens).toBe(8);
      else expect(result.usage ?? undefined).toBeUndefined();
    }
  });
});

describe('cache metrics', () => {
  it('switchyard_cache_requests_total counts hit, miss and bypass per model', async () => {
    const read = async () => (await getJson(gateway.url, '/metrics')).text;
    const before = await read();
    const prompt = fresh('metrics');
    await chat(prompt);
    await chat(prompt);
    await chat(prompt, { temperature: 0.7 });
    await streamChat(prompt);
    const after = await read();
    const delta = (result: string) =>
      metricValue(after, 'switchyard_cache_requests_total', { model: 'chat', result }) - metricValue(before, 'switchyard_cache_requests_total', { model: 'chat', result });
    expect(delta('miss')).toBe(1);
    expect(delta('hit')).toBe(2);
    expect(delta('bypass')).toBe(1);
    expect(metricValue(after, 'switchyard_requests_total', { model: 'chat', backend: 'cache', cache: 'hit' })).toBeGreaterThan(0);
  });
});
