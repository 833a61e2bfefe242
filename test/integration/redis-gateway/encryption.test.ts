/**
 * Encryption at rest through a real gateway: with cache.encryptionKey, raw
 * Redis (every key, every value) holds no prompt and no answer text; the
 * control gateway without a key stores the answer readably (so the check
 * itself can see plaintext when there is some).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { startSim, startTestGateway, type TestGateway } from '../../helpers/gateway.ts';
import { startRedis, type TestRedis } from '../../helpers/redis.ts';
import { dumpRedis, redisSection, simBackend, simModel, patientCache } from './harness.ts';

let redis: TestRedis;
let sim: Simulator;
let encrypted: TestGateway;
let plain: TestGateway;

beforeAll(async () => {
  redis = await startRedis();
  sim = await startSim({ flavor: 'vllm' });
  const common = { backends: [simBackend('sim', sim)], models: [simModel('chat', 'sim', sim)] };
  [encrypted, plain] = await Promise.all([
    startTestGateway({ ...common, redis: redisSection(redis.url, { keyPrefix: 'enc' }), cache: { ...patientCache, encryptionKey: randomBytes(32).toString('base64') } }),
    startTestGateway({ ...common, redis: redisSection(redis.url, { keyPrefix: 'plain' }), cache: patientCache }),
  ]);
});

afterAll(async () => {
  await Promise.all([encrypted?.close(), plain?.close()]);
  await sim?.close();
  await redis?.stop();
});

async function ask(gateway: TestGateway, content: string, stream = false) {
  const client = gateway.client();
  if (!stream) {
    const { data, response } = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content }], temperature: 0, max_tokens: 12 }).withResponse();
    return { text: data.choices[0]?.message.content ?? '', cache: response.headers.get('x-switchyard-cache') };
  }
  const { data, response } = await client.chat.completions
    .create({ model: 'chat', messages: [{ role: 'user', content }], temperature: 0, max_tokens: 12, stream: true })
    .withResponse();
  const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
  for await (const chunk of data) chunks.push(chunk);
  return { text: chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join(''), cache: response.headers.get('x-switchyard-cache') };
}

/** Texts that must never be readable in Redis: the whole text and its longer words. */
function needles(...texts: string[]): string[] {
  const words = texts.flatMap((text) => text.split(/\s+/)).filter((word) => word.length >= 8);
  return [...texts, ...words];
}

describe('encryption at rest', () => {
  it('no Redis key or value contains the prompt or the answer; the gateway still hits', async () => {
    const marker = randomUUID();
    const prompt = `Patient Jane Doe ${marker}: the confidential diagnosis is`;
    const streamedPrompt = `Streamed secret ${randomUUID()} about the quarterly numbers`;

    const first = await ask(encrypted, prompt);
    expect(first.cache).toBe('MISS');
    expect(first.text.length).toBeGreaterThan(0);
    const hit = await ask(encrypted, prompt);
    expect(hit).toEqual({ text: first.text, cache: 'HIT' }); // decrypts what it wrote
    expect(await ask(encrypted, prompt, true)).toEqual({ text: first.text, cache: 'HIT' });

    const streamed = await ask(encrypted, streamedPrompt, true); // stored from a stream
    expect(streamed.cache).toBe('MISS');
    expect(await ask(encrypted, streamedPrompt)).toEqual({ text: streamed.text, cache: 'HIT' });

    const all = await dumpRedis(redis.url);
    const mine = all.filter((entry) => entry.key.startsWith('enc:'));
    const cacheEntries = mine.filter((entry) => /^enc:cache:[0-9a-f]{64}$/.test(entry.key));
    expect(cacheEntries).toHaveLength(2);
    for (const entry of cacheEntries) expect(entry.value[0]).toBe(0x01); // the AES-GCM layout, not '{'

    const forbidden = [...needles(prompt, streamedPrompt, first.text, streamed.text), marker, 'Jane Doe', 'chat.completion', '"content"', 'prompt_tokens'];
    for (const entry of mine) {
      for (const text of forbidden) {
        expect(entry.key.includes(text), `key ${entry.key} contains ${text}`).toBe(false);
        expect(entry.value.includes(Buffer.from(text)), `value of ${entry.key} contains ${text}`).toBe(false);
      }
    }
    // no key anywhere in Redis carries prompt text
    for (const entry of all) for (const text of [marker, 'Jane', 'Streamed secret']) expect(entry.key).not.toContain(text);
    // nor do the gateway's logs
    const logs = encrypted.logs.join('\n');
    for (const text of [marker, first.text, streamed.text]) expect(logs).not.toContain(text);
  });

  it('control: without an encryption key the answer text is visible in raw Redis (the check can see plaintext)', async () => {
    const prompt = `Control prompt ${randomUUID()}`;
    const answer = await ask(plain, prompt);
    expect(answer.cache).toBe('MISS');
    const entries = (await dumpRedis(redis.url)).filter((entry) => /^plain:cache:[0-9a-f]{64}$/.test(entry.key));
    expect(entries).toHaveLength(1);
    const value = entries[0]?.value ?? Buffer.alloc(0);
    expect(value.includes(Buffer.from(answer.text))).toBe(true);
    expect(value.includes(Buffer.from('chat.completion'))).toBe(true);
    // the key is a hash even without encryption
    expect(entries[0]?.key).not.toContain('Control prompt');
  });
});
