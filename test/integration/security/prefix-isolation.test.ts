/**
 * Prefix-cache isolation between tenants (issue 12 item 5). Two tenants send the same long prompt through the
 * gateway; the simulators keep a prefix cache keyed as the runtimes key theirs (vLLM and SGLang by prompt
 * prefix and `cache_salt`; llama.cpp by prompt, unless `cache_prompt: false`) and report hits where the
 * runtimes do by default: vLLM's `vllm:prefix_cache_hits_total` and SGLang's `sglang:cache_hit_rate` on
 * /metrics, llama.cpp's `prompt_tokens_details.cached_tokens` in the answer. Paired assertions: without isolation the second tenant hits the
 * first's prefix (the control: caching is on and observable); with `isolation: tenant` it does not, while each
 * tenant still hits its own. A client-supplied `cache_salt` (even another tenant's, even a duplicated key) is
 * replaced, so no tenant can adopt another's cache.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.ts';
import { generateApiKey } from '../../../src/limits/api-keys.ts';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { backendFor, startSim, startTestGateway, type TestGateway } from '../../helpers/gateway.ts';

const alice = generateApiKey();
const bob = generateApiKey();
let vllm: Simulator;
let sglang: Simulator;
let llama: Simulator;
let gateway: TestGateway;

beforeAll(async () => {
  [vllm, sglang, llama] = await Promise.all([startSim({ flavor: 'vllm' }), startSim({ flavor: 'sglang' }), startSim({ flavor: 'llamacpp' })]);
  gateway = await startTestGateway({
    backends: [backendFor('vllm', vllm), backendFor('sglang', sglang), backendFor('llama', llama)],
    models: [
      { name: 'shared', targets: [{ backend: 'vllm', model: vllm.options.model }] },
      { name: 'isolated', isolation: 'tenant', targets: [{ backend: 'vllm', model: vllm.options.model }] },
      { name: 'isolated-sglang', isolation: 'tenant', targets: [{ backend: 'sglang', model: sglang.options.model }] },
      { name: 'isolated-llama', isolation: 'tenant', targets: [{ backend: 'llama', model: llama.options.model }] },
      { name: 'shared-llama', targets: [{ backend: 'llama', model: llama.options.model }] },
    ],
    isolation: { secret: 'a-test-secret-of-enough-length' },
    cache: { mode: 'off' },
    auth: {
      mode: 'keys',
      keys: [
        { id: 'alice', hash: alice.hash, tenant: 'alice' },
        { id: 'bob', hash: bob.hash, tenant: 'bob' },
      ],
    },
  });
});

afterAll(async () => {
  await gateway?.close();
  await Promise.all([vllm, sglang, llama].map((sim) => sim?.close()));
});

const client = (key: { secret: string }) => new OpenAI({ apiKey: key.secret, baseURL: gateway.baseURL, maxRetries: 0 });
let prompts = 0;
/** A fresh prompt long enough to fill several cache blocks. */
function longPrompt(): string {
  prompts++;
  return `Document ${prompts}: ${'The quarterly figures of the confidential merger are as follows. '.repeat(40)}`;
}

/** Prompt tokens the simulator has served from its prefix cache so far, read as an operator would. */
async function prefixHits(sim: Simulator): Promise<number> {
  const text = await (await fetch(`${sim.url}/metrics`)).text();
  const value = (name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  if (sim.options.flavor === 'vllm') return value('vllm:prefix_cache_hits_total');
  // SGLang publishes the hit rate over all prompt tokens.
  return Math.round(value('sglang:cache_hit_rate') * value('sglang:prompt_tokens_total'));
}

const simOf: Record<string, () => Simulator> = {
  shared: () => vllm,
  isolated: () => vllm,
  'isolated-sglang': () => sglang,
  'isolated-llama': () => llama,
  'shared-llama': () => llama,
};

/** Prompt tokens one request took from the backend's prefix cache. */
async function cachedTokens(key: { secret: string }, model: string, prompt: string, extra: Record<string, unknown> = {}): Promise<number> {
  const sim = (simOf[model] as () => Simulator)();
  const before = sim.options.flavor === 'llamacpp' ? 0 : await prefixHits(sim);
  const answer = await client(key).chat.completions.create({
    model,
    messages: [{ role: 'user', content: prompt }],
    max_tokens: 4,
    ...extra,
  } as OpenAI.ChatCompletionCreateParamsNonStreaming);
  if (sim.options.flavor === 'llamacpp') return answer.usage?.prompt_tokens_details?.cached_tokens ?? 0;
  return (await prefixHits(sim)) - before;
}

function lastBody(sim: Simulator): Record<string, unknown> {
  return sim.stats().lastRequest?.body as Record<string, unknown>;
}

describe('without isolation (control)', () => {
  it("one tenant's prompt is a prefix-cache hit for another", async () => {
    const prompt = longPrompt();
    expect(await cachedTokens(alice, 'shared', prompt)).toBe(0);
    expect(await cachedTokens(bob, 'shared', prompt)).toBeGreaterThan(0);
    expect(lastBody(vllm).cache_salt).toBeUndefined();
  });

  it('the same on llama.cpp', async () => {
    const prompt = longPrompt();
    expect(await cachedTokens(alice, 'shared-llama', prompt)).toBe(0);
    expect(await cachedTokens(bob, 'shared-llama', prompt)).toBeGreaterThan(0);
    expect(lastBody(llama).cache_prompt).toBeUndefined();
  });
});

describe.each([
  ['vllm', 'isolated', () => vllm],
  ['sglang', 'isolated-sglang', () => sglang],
])('isolation: tenant on %s', (_kind, model, sim) => {
  it('each tenant reuses only its own prefixes', async () => {
    const prompt = longPrompt();
    expect(await cachedTokens(alice, model, prompt)).toBe(0);
    const aliceSalt = lastBody(sim()).cache_salt;
    expect(await cachedTokens(bob, model, prompt)).toBe(0);
    const bobSalt = lastBody(sim()).cache_salt;
    expect(await cachedTokens(alice, model, prompt)).toBeGreaterThan(0);
    expect(await cachedTokens(bob, model, prompt)).toBeGreaterThan(0);
    expect(typeof aliceSalt).toBe('string');
    expect(typeof bobSalt).toBe('string');
    expect(aliceSalt).not.toBe(bobSalt);
    // The salt is not the tenant's name or anything a client could derive.
    expect(String(aliceSalt)).not.toContain('alice');
  });

  it("a client's own cache_salt is replaced, so no tenant can adopt another's cache", async () => {
    const prompt = longPrompt();
    await cachedTokens(alice, model, prompt);
    const aliceSalt = lastBody(sim()).cache_salt as string;
    // Bob learnt Alice's salt somehow and sends it, also as a duplicated key the body parser might keep.
    expect(await cachedTokens(bob, model, prompt, { cache_salt: aliceSalt })).toBe(0);
    expect(lastBody(sim()).cache_salt).not.toBe(aliceSalt);
    const raw = await fetch(`${gateway.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bob.secret}`, 'content-type': 'application/json' },
      body: `{"cache_salt":${JSON.stringify(aliceSalt)},"model":${JSON.stringify(model)},"messages":[{"role":"user","content":${JSON.stringify(prompt)}}],"max_tokens":4,"cache_salt":${JSON.stringify(aliceSalt)}}`,
    });
    expect(raw.status).toBe(200);
    expect(lastBody(sim()).cache_salt).not.toBe(aliceSalt);
  });

  it('streams and translated surfaces carry the salt too', async () => {
    const stream = await client(bob).chat.completions.create({ model, messages: [{ role: 'user', content: 'stream' }], max_tokens: 4, stream: true });
    for await (const _chunk of stream) {
      // drain
    }
    const streamed = lastBody(sim()).cache_salt;
    expect(typeof streamed).toBe('string');
    await client(bob).responses.create({ model, input: 'hello', max_output_tokens: 4 });
    expect(lastBody(sim()).cache_salt).toBe(streamed);
  });
});

describe('isolation: tenant on llama.cpp', () => {
  it('sends cache_prompt: false, so no prompt is reused', async () => {
    const prompt = longPrompt();
    expect(await cachedTokens(alice, 'isolated-llama', prompt)).toBe(0);
    expect(await cachedTokens(alice, 'isolated-llama', prompt)).toBe(0);
    expect(await cachedTokens(bob, 'isolated-llama', prompt)).toBe(0);
    expect(lastBody(llama).cache_prompt).toBe(false);
    expect(lastBody(llama).cache_salt).toBeUndefined();
  });
});

describe('configuration', () => {
  const base = {
    backends: [{ id: 'ext', kind: 'openai', url: 'http://127.0.0.1:9' }],
    models: [{ name: 'm', targets: [{ backend: 'ext', model: 'x' }] }],
  };
  it('refuses isolation on a backend kind that cannot isolate', () => {
    expect(() => validateConfig({ ...base, isolation: { mode: 'tenant' } }, 'test', {})).toThrow(
      /isolation.mode: backend "ext" of model "m" \(kind openai\) has no way to keep tenants' prefix caches apart/,
    );
    expect(() => validateConfig({ ...base, models: [{ ...base.models[0], isolation: 'tenant' }] }, 'test', {})).toThrow(/models\[0\]\.isolation: backend "ext"/);
    expect(() => validateConfig({ ...base, isolation: { mode: 'tenant' }, models: [{ ...base.models[0], isolation: 'none' }] }, 'test', {})).not.toThrow();
  });
});
