/**
 * Per-tenant data policy (issue 12 item 6), on a real gateway, simulator and redis-server: a tenant whose
 * policy turns the cache off has nothing stored or served from the cache (another tenant's identical requests
 * still HIT); `responses.store: false` keeps none of its Responses answers even when it sends `store: true`
 * (nor does the runtime it reaches); `responses.storeTtlSeconds` bounds how long its answers are kept; and
 * `logging.requests` lowers its per-request log line to debug or drops it.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../../src/limits/api-keys.ts';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { startSim, startTestGateway, type TestGateway } from '../../helpers/gateway.ts';
import { startRedis, type TestRedis } from '../../helpers/redis.ts';
import { chatBody, dumpRedis, patientCache, postJson, redisSection, simBackend, simModel } from '../redis-gateway/harness.ts';

const open = generateApiKey();
const vault = generateApiKey();
const quiet = generateApiKey();
const keyPrefix = `t${randomUUID().slice(0, 8)}`;
let sim: Simulator;
let redis: TestRedis;
let gateway: TestGateway;

beforeAll(async () => {
  [sim, redis] = await Promise.all([startSim({ flavor: 'vllm' }), startRedis()]);
  gateway = await startTestGateway({
    backends: [simBackend('sim', sim)],
    models: [simModel('chat', 'sim', sim)],
    cache: patientCache,
    redis: redisSection(redis.url, { keyPrefix }),
    auth: {
      mode: 'keys',
      keys: [
        { id: 'open', hash: open.hash, tenant: 'open' },
        { id: 'vault', hash: vault.hash, tenant: 'vault' },
        { id: 'quiet', hash: quiet.hash, tenant: 'quiet' },
      ],
    },
    tenants: {
      vault: { cache: 'off', responses: { store: false }, logging: { requests: 'off' } },
      quiet: { responses: { storeTtlSeconds: 2 }, logging: { requests: 'debug' } },
    },
  });
});

afterAll(async () => {
  await gateway?.close();
  await Promise.all([sim?.close(), redis?.stop()]);
});

const client = (key: { secret: string }) => new OpenAI({ apiKey: key.secret, baseURL: gateway.baseURL, maxRetries: 0 });
const cacheKeys = async () => (await dumpRedis(redis.url)).filter((entry) => entry.key.startsWith(`${keyPrefix}:cache:`)).length;

describe('cache', () => {
  it("a tenant with cache: off is never cached; another tenant's identical requests are", async () => {
    const body = chatBody(`policy ${randomUUID()}`);
    const before = { upstream: sim.stats().requests, keys: await cacheKeys() };
    const vaultHeaders: Array<string | null> = [];
    for (let index = 0; index < 3; index++) vaultHeaders.push((await postJson(gateway.url, '/v1/chat/completions', body, { key: vault.secret })).headers.get('x-switchyard-cache'));
    expect(vaultHeaders).toEqual(['BYPASS', 'BYPASS', 'BYPASS']);
    expect(sim.stats().requests - before.upstream).toBe(3);
    expect(await cacheKeys()).toBe(before.keys);

    const openHeaders: Array<string | null> = [];
    for (let index = 0; index < 2; index++) openHeaders.push((await postJson(gateway.url, '/v1/chat/completions', body, { key: open.secret })).headers.get('x-switchyard-cache'));
    expect(openHeaders).toEqual(['MISS', 'HIT']);
    expect(await cacheKeys()).toBe(before.keys + 1);
  });
});

describe('stored responses', () => {
  it('responses.store: false keeps nothing, even with store: true', async () => {
    const response = await client(vault).responses.create({ model: 'chat', input: 'keep this?', max_output_tokens: 8, store: true });
    // The runtime serving Responses natively is told not to keep it either.
    expect((sim.stats().lastRequest?.body as { store?: unknown } | undefined)?.store).toBe(false);
    const keys = (await dumpRedis(redis.url)).filter((entry) => entry.key.startsWith(`${keyPrefix}:responses:`));
    expect(keys.some((entry) => entry.key.endsWith(response.id))).toBe(false);
    await expect(client(vault).responses.retrieve(response.id)).rejects.toMatchObject({ status: 404 });
    // The default tenant policy still stores.
    const kept = await client(open).responses.create({ model: 'chat', input: 'keep this', max_output_tokens: 8, store: true });
    expect((sim.stats().lastRequest?.body as { store?: unknown } | undefined)?.store).toBe(true);
    expect((await client(open).responses.retrieve(kept.id)).id).toBe(kept.id);
  });

  it("responses.storeTtlSeconds bounds how long the tenant's answers are kept", async () => {
    const response = await client(quiet).responses.create({ model: 'chat', input: 'short-lived', max_output_tokens: 8, store: true });
    const raw = new Redis(redis.url);
    try {
      const [key] = await raw.keys(`${keyPrefix}:responses:*${response.id}`);
      expect(key).toBeDefined();
      const ttl = await raw.pttl(key as string);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(2_000);
      const openAnswer = await client(open).responses.create({ model: 'chat', input: 'long-lived', max_output_tokens: 8, store: true });
      const [openKey] = await raw.keys(`${keyPrefix}:responses:*${openAnswer.id}`);
      expect(await raw.pttl(openKey as string)).toBeGreaterThan(3_000_000); // responses.storeTtlSeconds: 3600
    } finally {
      raw.disconnect();
    }
  });
});

describe('request logs', () => {
  it('logging.requests: off drops the tenant’s request line; debug keeps it below info; others log as usual', async () => {
    const ids = { open: randomUUID(), vault: randomUUID(), quiet: randomUUID() };
    for (const [name, key] of [
      ['open', open],
      ['vault', vault],
      ['quiet', quiet],
    ] as const) {
      const answer = await postJson(gateway.url, '/v1/chat/completions', chatBody(`log ${randomUUID()}`), { key: key.secret, headers: { 'x-request-id': ids[name] } });
      expect(answer.status).toBe(200);
    }
    await new Promise((resolve) => setTimeout(resolve, 400)); // the log writer batches lines (250 ms)
    const lineOf = (id: string) => gateway.logs.find((line) => line.includes(id) && line.includes('request completed'));
    expect(lineOf(ids.open)).toBeDefined();
    expect(lineOf(ids.vault)).toBeUndefined();
    expect(lineOf(ids.quiet)).toBeUndefined(); // logging.level is info

    // At logging.level debug the quiet tenant's line appears (at debug); the vault's still does not.
    const verbose = await startTestGateway({ ...gateway.config, server: { ...gateway.config.server, port: 0 }, logging: { ...gateway.config.logging, level: 'debug' } });
    try {
      const again = { vault: randomUUID(), quiet: randomUUID() };
      await postJson(verbose.url, '/v1/chat/completions', chatBody(`log ${randomUUID()}`), { key: vault.secret, headers: { 'x-request-id': again.vault } });
      await postJson(verbose.url, '/v1/chat/completions', chatBody(`log ${randomUUID()}`), { key: quiet.secret, headers: { 'x-request-id': again.quiet } });
      await new Promise((resolve) => setTimeout(resolve, 400));
      const line = verbose.logs.find((entry) => entry.includes(again.quiet) && entry.includes('request completed'));
      expect(JSON.parse(line ?? '{}').level).toBe(20);
      expect(verbose.logs.some((entry) => entry.includes(again.vault) && entry.includes('request completed'))).toBe(false);
    } finally {
      await verbose.close();
    }
  });
});
