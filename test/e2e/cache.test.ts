/**
 * The response cache in front of a real llama-server, on a real Redis: a
 * repeated deterministic request is answered from the cache without the
 * server doing any work (its own token counters do not move), streamed or not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type OpenAI from 'openai';
import type { TestGateway } from '../helpers/gateway.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { Cleanup, metrics, PUBLIC_MODEL, sample, startGatewayFor, startServers } from './helpers/e2e.ts';
import type { LlamaServer } from './helpers/llama-server.ts';

const cleanup = new Cleanup();
let server: LlamaServer;
let redis: TestRedis;
let gateway: TestGateway;
let client: OpenAI;

beforeAll(async () => {
  [server] = (await startServers(1, { slots: 2, ctx: 1024 }, cleanup)) as [LlamaServer];
  redis = await startRedis();
  cleanup.add(() => redis.stop());
  gateway = await startGatewayFor({ llama: server }, cleanup, { top: { redis: { url: redis.url, commandTimeoutMs: 2_000 }, cache: { timeoutMs: 2_000 } } });
  client = gateway.client({ timeout: 30_000 });
});

afterAll(() => cleanup.run());

async function serverWork(): Promise<number> {
  const samples = await metrics(server.url);
  return (sample(samples, 'llamacpp:prompt_tokens_total') ?? 0) + (sample(samples, 'llamacpp:tokens_predicted_total') ?? 0);
}

describe('response cache against a real llama-server', () => {
  it('serves a repeated deterministic request from the cache without touching the server', async () => {
    const body = { model: PUBLIC_MODEL, messages: [{ role: 'user' as const, content: 'Cache me if you can.' }], max_tokens: 12, temperature: 0, seed: 42 };
    const first = await client.chat.completions.create(body).withResponse();
    expect(first.response.headers.get('x-switchyard-cache')).toBe('MISS');
    // the answer is stored after it is sent: wait until a repeat hits
    let second = await client.chat.completions.create(body).withResponse();
    for (let attempt = 0; attempt < 50 && second.response.headers.get('x-switchyard-cache') !== 'HIT'; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      second = await client.chat.completions.create(body).withResponse();
    }
    const before = await serverWork();
    const hit = await client.chat.completions.create(body).withResponse();
    expect(hit.response.headers.get('x-switchyard-cache')).toBe('HIT');
    expect(hit.data.choices[0]?.message.content).toBe(first.data.choices[0]?.message.content);
    expect(hit.data.usage).toEqual(first.data.usage);
    const stream = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      usage = chunk.usage ?? usage;
    }
    expect(text).toBe(first.data.choices[0]?.message.content);
    expect(usage?.completion_tokens).toBe(first.data.usage?.completion_tokens);
    expect(await serverWork()).toBe(before);
  });
});
