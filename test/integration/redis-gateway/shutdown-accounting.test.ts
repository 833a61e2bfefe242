/**
 * SIGTERM with requests in flight (issue 13 item 6), on a real gateway process
 * and a real redis-server: a stream that outlives the grace period ends with an
 * OpenAI-shaped `server_shutting_down` event (not a bare socket close), a JSON
 * request still waiting gets that error as its answer, a short stream finishes
 * normally within the grace period, and after the process exits Redis (read
 * directly) shows every request settled: the token buckets and budgets hold
 * exactly what each request used (the cut stream: its prompt estimate plus the
 * chunks it relayed, as the upstream's usage never came) and no hold is left.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateApiKey } from '../../../src/limits/api-keys.ts';
import { estimatePromptTokens } from '../../../src/proxy/estimate.ts';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { startSim, waitFor } from '../../helpers/gateway.ts';
import { startRedis, type TestRedis } from '../../helpers/redis.ts';
import { postJson, redisSection, simBackend, simModel, startGatewayProcess, type GatewayProcess } from './harness.ts';

const streamer = generateApiKey();
const waiter = generateApiKey();
const perToken = 1e-6; // inputPer1M = outputPer1M = 1
const keyPrefix = `sd${randomUUID().slice(0, 8)}`;

let redis: TestRedis;
let raw: Redis;
let sim: Simulator;
let llama: Simulator;
let gateway: GatewayProcess;

beforeAll(async () => {
  [redis, sim, llama] = await Promise.all([
    startRedis(),
    startSim({ flavor: 'vllm', ttftMs: 50, tokensPerSecond: 20 }),
    startSim({ flavor: 'llamacpp', ttftMs: 50, tokensPerSecond: 20 }),
  ]);
  raw = new Redis(redis.url);
  gateway = await startGatewayProcess({
    server: { host: '127.0.0.1', port: 0, shutdownGraceMs: 1_500 },
    logging: { level: 'info' },
    backends: [simBackend('slow', sim, { cost: { inputPer1M: 1, outputPer1M: 1 } }), simBackend('slow-llama', llama, { cost: { inputPer1M: 1, outputPer1M: 1 } })],
    // llama.cpp: a JSON request is streamed from the backend and assembled by the gateway
    models: [simModel('chat', 'slow', sim), simModel('chat-llama', 'slow-llama', llama)],
    redis: redisSection(redis.url, { keyPrefix }),
    auth: {
      mode: 'keys',
      keys: [
        { id: 'streamer', hash: streamer.hash, tenant: 'shop', tpm: 1_000_000, budget: { amount: 10, period: 'day' } },
        { id: 'waiter', hash: waiter.hash, tenant: 'shop', tpm: 1_000_000, budget: { amount: 10, period: 'day' } },
      ],
    },
    limits: { tenants: { shop: { budget: { amount: 10, period: 'month' } } } },
  });
});

afterAll(async () => {
  await gateway?.close();
  raw?.disconnect();
  await Promise.all([sim?.close(), llama?.close(), redis?.stop()]);
});

const chatBody = (label: string, extra: Record<string, unknown>) => ({
  model: 'chat',
  messages: [{ role: 'user', content: `${label} ${randomUUID()}: describe the shunting yard at night` }],
  temperature: 0.7,
  ...extra,
});

/** A streaming request read event by event, as a client would. */
function openStream(body: Record<string, unknown>, secret: string) {
  const state: { events: string[]; done: Promise<void>; brokenBy: string | undefined } = { events: [], done: Promise.resolve(), brokenBy: undefined };
  state.done = (async () => {
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
      body: JSON.stringify(body),
    });
    expect(response.status).toBe(200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = '';
    try {
      for (;;) {
        const { value, done: ended } = await reader.read();
        if (ended) break;
        text += decoder.decode(value, { stream: true });
        const parts = text.split('\n\n');
        text = parts.pop() ?? '';
        for (const part of parts) if (part.startsWith('data: ')) state.events.push(part.slice(6));
      }
    } catch (error) {
      state.brokenBy = (error as Error).message; // the connection was closed under the stream
    }
  })();
  return state;
}

/** Sum of every token bucket of a key (a settle lands in the bucket it was reserved in, or the current one). */
async function tokensCounted(keyId: string): Promise<number> {
  const keys = await raw.keys(`${keyPrefix}:tpm:{${keyId}}:*`);
  const values = keys.length > 0 ? await raw.mget(keys) : [];
  return values.reduce((sum, value) => sum + Number(value ?? 0), 0);
}

async function spent(scope: 'key' | 'tenant', id: string): Promise<number> {
  const keys = (await raw.keys(`${keyPrefix}:budget:{${scope}%3A${id}}:*`)).filter((key) => /:[dm]\d+$/.test(key));
  expect(keys.length).toBeLessThanOrEqual(1);
  return keys[0] === undefined ? 0 : Number(await raw.get(keys[0]));
}

it('SIGTERM: cut streams get server_shutting_down, every request is settled in Redis before the process exits', async () => {
  const longBody = chatBody('long', { stream: true, max_tokens: 400 });
  const long = openStream(longBody, streamer.secret);
  await waitFor(() => long.events.length >= 5, 10_000, 'the long stream to be under way');

  const shortBody = chatBody('short', { stream: true, max_tokens: 8, stream_options: { include_usage: true } });
  const short = openStream(shortBody, streamer.secret);
  const jsonBody = chatBody('json', { max_tokens: 400 });
  const waiting = postJson(gateway.url, '/v1/chat/completions', jsonBody, { key: waiter.secret }).catch((error: Error) => ({ status: 0, json: { error: error.message } }));
  const assembledBody = { ...chatBody('assembled', { max_tokens: 400 }), model: 'chat-llama' };
  const assembling = postJson(gateway.url, '/v1/chat/completions', assembledBody, { key: waiter.secret }).catch((error: Error) => ({ status: 0, json: { error: error.message } }));
  await waitFor(() => short.events.length >= 1 && sim.stats().requests >= 3 && llama.stats().requests >= 1, 10_000, 'every request to reach a backend');
  // Everything is reserved now: the long stream holds its prompt estimate + 400 tokens.
  expect(await tokensCounted('streamer')).toBeGreaterThan(400);

  const exited = gateway.close(); // SIGTERM, then waits for the exit
  const [answer, assembled] = await Promise.all([waiting, assembling, long.done, short.done]);
  await exited;
  expect(gateway.child.exitCode).toBe(0);

  // Soft assertions: each property is reported on its own.
  // The long stream: cut at the grace deadline with an OpenAI-shaped error event, no [DONE].
  expect.soft(long.brokenBy).toBeUndefined();
  const last = JSON.parse(long.events.at(-1) ?? '{}') as { error?: Record<string, unknown> };
  expect.soft(last.error).toMatchObject({ code: 'server_shutting_down', type: 'server_error', param: null });
  expect.soft(long.events).not.toContain('[DONE]');
  const longChunks = long.events.length - (last.error ? 1 : 0);
  // The short stream finished within the grace period, with its usage.
  expect.soft(short.events.at(-1)).toBe('[DONE]');
  const shortUsage = (JSON.parse(short.events.at(-2) ?? '{}') as { usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } }).usage;
  // The JSON request still waiting got the error as its answer.
  expect.soft(answer.status).toBe(503);
  expect.soft(answer.json.error).toMatchObject({ code: 'server_shutting_down', type: 'server_error' });
  expect.soft((answer as { headers?: Headers }).headers?.get('retry-after')).toBe('1');
  expect.soft(assembled.status).toBe(503);
  expect.soft(assembled.json.error).toMatchObject({ code: 'server_shutting_down', type: 'server_error' });

  // Settled before Redis closed: what each used, nothing held.
  const longUsed = estimatePromptTokens(longBody) + longChunks;
  // A JSON answer that never came: the backend had the prompt (usage as far as can be told).
  const jsonUsed = estimatePromptTokens(jsonBody) + estimatePromptTokens(assembledBody);
  expect.soft(await tokensCounted('streamer')).toBe(shortUsage.total_tokens + longUsed);
  expect.soft(await tokensCounted('waiter')).toBe(jsonUsed);
  expect.soft(await spent('key', 'streamer')).toBeCloseTo((shortUsage.total_tokens + longUsed) * perToken, 12);
  expect.soft(await spent('key', 'waiter')).toBeCloseTo(jsonUsed * perToken, 12);
  expect.soft(await spent('tenant', 'shop')).toBeCloseTo((shortUsage.total_tokens + longUsed + jsonUsed) * perToken, 12);
  expect.soft(await raw.keys(`${keyPrefix}:budget:*:held`)).toEqual([]);
  expect.soft(await raw.keys(`${keyPrefix}:budget:*:leases`)).toEqual([]);
  // The log tells the ending apart from a client that left.
  expect.soft(gateway.logs.some((line) => line.includes('grace period over') && line.includes('"stopped":3'))).toBe(true);
}, 30_000);
