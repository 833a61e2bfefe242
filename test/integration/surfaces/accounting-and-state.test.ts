/**
 * A Responses or Messages request is counted exactly like the chat request it maps to —
 * token reservation and settlement, cost, token metrics, cacheability — in
 * both modes (native passthrough and translation), on a real redis-server
 * with API keys. And the Responses state: `store: true` keeps the answer per
 * tenant, encrypted, and `previous_response_id` continues it on any backend.
 */
import Anthropic from '@anthropic-ai/sdk';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../../src/limits/api-keys.ts';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { startSim, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.ts';
import { startRedis, type TestRedis } from '../../helpers/redis.ts';
import { patientCache, postJson, redisSection, simBackend } from '../redis-gateway/harness.ts';

const keys = {
  'chat-native': generateApiKey(),
  'chat-translated': generateApiKey(),
  'chat-messages-native': generateApiKey(),
  'chat-messages-translated': generateApiKey(),
  'messages-native': generateApiKey(),
  'messages-translated': generateApiKey(),
  native: generateApiKey(),
  translated: generateApiKey(),
  teamA: generateApiKey(),
  teamB: generateApiKey(),
};
const cost = { inputPer1M: 1_000, outputPer1M: 3_000 };
const adminToken = 'admin-token-for-metrics';

let redis: TestRedis;
let raw: Redis;
let vllm: Simulator;
let gateway: TestGateway;

beforeAll(async () => {
  redis = await startRedis();
  raw = new Redis(redis.url);
  vllm = await startSim({ flavor: 'vllm' });
  gateway = await startTestGateway({
    backends: [
      simBackend('chat-b', vllm, { cost }),
      simBackend('native-b', vllm, { cost }),
      simBackend('translated-b', vllm, { cost, surfaces: { responses: 'translate', messages: 'translate' } }),
    ],
    models: [
      { name: 'chat', targets: [{ backend: 'chat-b', model: 'Qwen/Qwen3-8B' }] },
      { name: 'native', targets: [{ backend: 'native-b', model: 'Qwen/Qwen3-8B' }] },
      { name: 'translated', targets: [{ backend: 'translated-b', model: 'Qwen/Qwen3-8B' }] },
      { name: 'messages-native', targets: [{ backend: 'native-b', model: 'Qwen/Qwen3-8B' }] },
      { name: 'messages-translated', targets: [{ backend: 'translated-b', model: 'Qwen/Qwen3-8B' }] },
    ],
    redis: redisSection(redis.url),
    cache: { ...patientCache, encryptionKey: Buffer.alloc(32, 7).toString('base64') },
    auth: {
      mode: 'keys',
      keys: [
        { id: 'chat-native', hash: keys['chat-native'].hash, tpm: 100_000 },
        { id: 'chat-translated', hash: keys['chat-translated'].hash, tpm: 100_000 },
        { id: 'chat-messages-native', hash: keys['chat-messages-native'].hash, tpm: 100_000 },
        { id: 'chat-messages-translated', hash: keys['chat-messages-translated'].hash, tpm: 100_000 },
        { id: 'messages-native', hash: keys['messages-native'].hash, tpm: 100_000 },
        { id: 'messages-translated', hash: keys['messages-translated'].hash, tpm: 100_000 },
        { id: 'native', hash: keys.native.hash, tpm: 100_000 },
        { id: 'translated', hash: keys.translated.hash, tpm: 100_000 },
        { id: 'team-a', hash: keys.teamA.hash, tenant: 'team-a' },
        { id: 'team-b', hash: keys.teamB.hash, tenant: 'team-b' },
      ],
    },
    limits: { reserveCompletionTokens: 100 },
    admin: { token: adminToken },
  });
});

afterAll(async () => {
  await gateway?.close();
  await vllm?.close();
  raw?.disconnect();
  await redis?.stop();
});

/** Tokens counted for a key in Redis now (both minute buckets). */
async function charged(keyId: string): Promise<number> {
  let total = 0;
  for (const key of await raw.keys(`swy:tpm:{${keyId}}:*`)) total += Number((await raw.get(key)) ?? 0);
  return total;
}

async function metric(pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${gateway.url}/metrics`, { headers: { authorization: `Bearer ${adminToken}` } })).text();
  return Number(pattern.exec(text)?.[1] ?? 0);
}

const client = (key: string) => new OpenAI({ baseURL: gateway.baseURL, apiKey: key, maxRetries: 0 });

// The Responses request, and the chat request it maps to.
const responsesRequest = { input: 'Count the wagons in the yard, please.', instructions: 'Answer briefly.', max_output_tokens: 10, temperature: 0.7 };
const chatRequest = {
  messages: [
    { role: 'system' as const, content: 'Answer briefly.' },
    { role: 'user' as const, content: 'Count the wagons in the yard, please.' },
  ],
  max_tokens: 10,
  temperature: 0.7,
};

describe('a Responses request is counted like the chat request it maps to', () => {
  it.each(['native', 'translated'] as const)('%s: same reservation, settlement, tokens and cost as chat', async (mode) => {
    // Each mode against its own chat key, so both start from a full limit.
    const { data: chatAnswer, response: chatHttp } = await client(keys[`chat-${mode}`].secret)
      .chat.completions.create({ model: 'chat', ...chatRequest })
      .withResponse();
    const { data: answer, response: http } = await client(keys[mode].secret)
      .responses.create({ model: mode, ...responsesRequest })
      .withResponse();
    // The reservation (estimated prompt + max tokens) is the same, so what is left of the same limit is too.
    expect(http.headers.get('x-ratelimit-remaining-tokens')).toBe(chatHttp.headers.get('x-ratelimit-remaining-tokens'));
    expect(answer.usage?.input_tokens).toBe(chatAnswer.usage?.prompt_tokens);
    expect(answer.usage?.output_tokens).toBe(chatAnswer.usage?.completion_tokens);
    // Settled with the real usage: the same tokens charged.
    await waitFor(async () => (await charged(mode)) === chatAnswer.usage?.total_tokens, 10_000, `${mode} settled`);
    await waitFor(async () => (await charged(`chat-${mode}`)) === chatAnswer.usage?.total_tokens, 10_000, 'chat settled');
    const tokens = (model: string, type: string) => metric(new RegExp(`switchyard_tokens_total\\{model="${model}",backend="[^"]+",type="${type}"\\} (\\d+)`));
    expect(await tokens(mode, 'prompt')).toBe(chatAnswer.usage?.prompt_tokens);
    expect(await tokens(mode, 'completion')).toBe(chatAnswer.usage?.completion_tokens);
    const costOf = (model: string) => metric(new RegExp(`switchyard_cost_total\\{model="${model}",backend="[^"]+"\\} ([0-9.e-]+)`));
    expect(await costOf(mode)).toBeGreaterThan(0);
    expect(await costOf(mode)).toBeCloseTo((await costOf('chat')) / (await chatCount()), 12);
  });

  it.each(['native', 'translated'] as const)('%s: a deterministic request is cached like chat (JSON and stream), and a hit is not metered', async (mode) => {
    const openai = client(keys[mode].secret);
    const body = { model: mode, input: `Cache me (${mode}).`, temperature: 0, max_output_tokens: 6 };
    const first = await openai.responses.create(body).withResponse();
    const second = await openai.responses.create(body).withResponse();
    expect(first.response.headers.get('x-switchyard-cache')).toBe('MISS');
    expect(second.response.headers.get('x-switchyard-cache')).toBe('HIT');
    expect(second.data.output_text).toBe(first.data.output_text);
    await waitFor(async () => (await charged(mode)) > 0, 10_000, 'settled');
    const before = await charged(mode);
    // A stream is its own entry (the transcript as sent), replayed through the SDK's accumulator.
    const streamText = async () => {
      const stream = openai.responses.stream(body);
      for await (const _event of stream) {
        // drain
      }
      return (await stream.finalResponse()).output_text;
    };
    expect(await streamText()).toBe(first.data.output_text);
    const hitStream = await postJson(gateway.baseURL, '/responses', { ...body, stream: true }, { key: keys[mode].secret });
    expect(hitStream.headers.get('x-switchyard-cache')).toBe('HIT');
    expect(hitStream.text).toMatch(/"type":"response\.(completed|incomplete)"/);
    const hits = await metric(new RegExp(`switchyard_cache_requests_total\\{model="${mode}",result="hit"\\} (\\d+)`));
    expect(hits).toBe(2);
    await waitFor(async () => (await charged(mode)) > before, 10_000, 'the stream miss settled');
    const afterMiss = await charged(mode);
    await postJson(gateway.baseURL, '/responses', body, { key: keys[mode].secret });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await charged(mode)).toBe(afterMiss); // a hit costs no tokens
  });
});

async function chatCount(): Promise<number> {
  return metric(/switchyard_requests_total\{model="chat",backend="chat-b",endpoint="chat",status_class="2xx",cache="bypass"\} (\d+)/);
}

describe('a Messages request is counted like the chat request it maps to', () => {
  it.each(['native', 'translated'] as const)('%s: same reservation, settlement and tokens as chat', async (mode) => {
    const model = `messages-${mode}` as const;
    const { data: chatAnswer, response: chatHttp } = await client(keys[`chat-messages-${mode}`].secret)
      .chat.completions.create({ model: 'chat', ...chatRequest })
      .withResponse();
    const anthropic = new Anthropic({ baseURL: gateway.url, apiKey: keys[model].secret, maxRetries: 0 });
    // Sampling parameters pass through as the API takes them (the SDK's types here do not list temperature).
    const request = { model, system: 'Answer briefly.', messages: [{ role: 'user' as const, content: 'Count the wagons in the yard, please.' }], max_tokens: 10, temperature: 0.7 };
    const { data: answer, response: http } = await anthropic.messages.create(request).withResponse();
    expect(http.headers.get('x-ratelimit-remaining-tokens')).toBe(chatHttp.headers.get('x-ratelimit-remaining-tokens'));
    expect(answer.usage.input_tokens + (answer.usage.cache_read_input_tokens ?? 0)).toBe(chatAnswer.usage?.prompt_tokens);
    expect(answer.usage.output_tokens).toBe(chatAnswer.usage?.completion_tokens);
    await waitFor(async () => (await charged(model)) === chatAnswer.usage?.total_tokens, 10_000, `${model} settled`);
    const tokens = (type: string) => metric(new RegExp(`switchyard_tokens_total\\{model="${model}",backend="[^"]+",type="${type}"\\} (\\d+)`));
    expect(await tokens('prompt')).toBe(chatAnswer.usage?.prompt_tokens);
    expect(await tokens('completion')).toBe(chatAnswer.usage?.completion_tokens);
    // Deterministic: cached like chat, the hit in Anthropic's shape.
    const body = { model, messages: [{ role: 'user' as const, content: 'Cache this.' }], max_tokens: 6, temperature: 0 };
    const first = await anthropic.messages.create(body).withResponse();
    const second = await anthropic.messages.create(body).withResponse();
    expect(first.response.headers.get('x-switchyard-cache')).toBe('MISS');
    expect(second.response.headers.get('x-switchyard-cache')).toBe('HIT');
    expect(second.data.content).toEqual(first.data.content);
  });
});

describe('Responses state on Redis', () => {
  it.each(['native', 'translated'] as const)('%s: store keeps the answer per tenant; previous_response_id continues it', async (mode) => {
    const teamA = client(keys.teamA.secret);
    const first = await teamA.responses.create({ model: mode, input: 'My name is Ada.', store: true, max_output_tokens: 5 });
    expect(first.id).toMatch(/^resp_/);
    const fetched = await teamA.responses.retrieve(first.id);
    expect(fetched.id).toBe(first.id);
    expect(fetched.output_text).toBe(first.output_text);
    expect(fetched.model).toBe(mode);
    // Another tenant cannot read it, nor continue it.
    const other = await fetch(`${gateway.baseURL}/responses/${first.id}`, { headers: { authorization: `Bearer ${keys.teamB.secret}` } });
    expect(other.status).toBe(404);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe('response_not_found');
    const refused = await postJson(gateway.baseURL, '/responses', { model: mode, input: 'And?', previous_response_id: first.id }, { key: keys.teamB.secret });
    expect(refused.status).toBe(400);
    expect(refused.json.error.param).toBe('previous_response_id');
    // The next turn carries the first one: the backend sees the earlier input and answer too.
    const second = await teamA.responses.create({ model: mode, input: 'What is my name?', previous_response_id: first.id, max_output_tokens: 5 });
    const alone = await teamA.responses.create({ model: mode, input: 'What is my name?', max_output_tokens: 5 });
    expect(second.usage?.input_tokens).toBeGreaterThan((alone.usage?.input_tokens ?? 0) + (first.usage?.output_tokens ?? 0));
    expect(second.previous_response_id ?? first.id).toBe(first.id);
  });

  it('stores responses encrypted with the cache key, under a hashed tenant, with the TTL', async () => {
    const stored = await client(keys.teamA.secret).responses.create({ model: 'translated', input: 'A secret about wagons.', store: true, max_output_tokens: 4 });
    const [key] = await raw.keys(`swy:responses:*:${stored.id}`);
    expect(key).toBeDefined();
    expect(key).not.toContain('team-a');
    const value = await raw.getBuffer(key as string);
    expect(value?.[0]).toBe(0x01); // the AES-GCM format, not JSON
    expect(value?.toString('latin1')).not.toContain('wagons');
    const ttl = await raw.pttl(key as string);
    expect(ttl).toBeGreaterThan(3_500_000);
    expect(ttl).toBeLessThanOrEqual(3_600_000);
  });

  it('does not store what the request did not ask to keep', async () => {
    const unstored = await client(keys.teamA.secret).responses.create({ model: 'native', input: 'Forget this.', max_output_tokens: 4 });
    expect(await raw.keys(`swy:responses:*:${unstored.id}`)).toEqual([]);
    const missing = await fetch(`${gateway.baseURL}/responses/${unstored.id}`, { headers: { authorization: `Bearer ${keys.teamA.secret}` } });
    expect(missing.status).toBe(404);
  });
});
