/**
 * Air-gap proof (issue 12 item 7): a gateway process with every feature that could talk to the network turned
 * on — several backend kinds with health probes, /metrics scrapes and model discovery, Redis for keys, limits,
 * budgets, the cache and stored responses, the admin listener, bearer JWTs checked against a JWKS URL, traces exported to
 * an OTLP endpoint — serves traffic on every surface while a
 * preloaded recorder (test/helpers/connect-recorder.ts) logs every TCP/Unix connect, UDP socket and name lookup
 * the process makes. The only destinations allowed are the configured backends, Redis, the JWKS URL and the OTLP endpoint: no telemetry, no
 * update check, no remote price list, no DNS for anything else.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateApiKey } from '../../../src/limits/api-keys.ts';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { startSim, waitFor } from '../../helpers/gateway.ts';
import { startRedis, type TestRedis } from '../../helpers/redis.ts';
import { getJson, postJson, redisSection, startGatewayProcess, type GatewayProcess } from '../redis-gateway/harness.ts';

const key = generateApiKey();
const adminToken = `adm-${randomUUID()}`;
let directory: string;
let log: string;
let redis: TestRedis;
let sims: Simulator[];
let gateway: GatewayProcess;
let jwksServer: Server;
let jwksPort: number;
/** The configured OTLP/HTTP endpoint (tracing on): counts the exports it receives. */
let otlpServer: Server;
let otlpPort: number;
let exports = 0;
let bearer: string;

interface Attempt {
  type: 'tcp' | 'unix' | 'udp' | 'lookup' | 'resolve';
  host?: string;
  port?: number;
  path?: string;
}

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'swy-airgap-'));
  log = join(directory, 'connects.jsonl');
  redis = await startRedis();
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
  jwksServer = createServer((_request, response) => response.end(JSON.stringify({ keys: [jwk] })));
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  jwksPort = (jwksServer.address() as AddressInfo).port;
  otlpServer = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      exports++;
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => otlpServer.listen(0, '127.0.0.1', resolve));
  otlpPort = (otlpServer.address() as AddressInfo).port;
  bearer = await new SignJWT({ tenant: 'acme' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer('idp').setAudience('swy').setExpirationTime('10m').sign(privateKey);
  sims = await Promise.all([startSim({ flavor: 'vllm' }), startSim({ flavor: 'llamacpp' }), startSim({ flavor: 'sglang' }), startSim({ flavor: 'vllm' })]);
  const [vllm, llama, sglang, external] = sims as [Simulator, Simulator, Simulator, Simulator];
  const fast = { health: { intervalMs: 200 }, scrape: { intervalMs: 200 }, discoveryIntervalMs: 300 };
  gateway = await startGatewayProcess(
    {
      admin: { token: adminToken, host: '127.0.0.1', port: 0 },
      backends: [
        { id: 'vllm', kind: 'vllm', url: vllm.url, ...fast, cost: { inputPer1M: 1, outputPer1M: 2 }, loadReport: true },
        // A host name, so the test sees the lookup it causes (and only that one).
        { id: 'llama', kind: 'llamacpp', url: llama.url.replace('127.0.0.1', 'localhost'), ...fast, cost: { perHour: 0.5 } },
        { id: 'sglang', kind: 'sglang', url: sglang.url, ...fast },
        { id: 'external', kind: 'openai', url: external.url, apiKey: 'sk-upstream-secret', ...fast },
      ],
      models: [
        {
          name: 'chat',
          targets: [
            { backend: 'vllm', model: vllm.options.model },
            { backend: 'llama', model: llama.options.model },
          ],
          policy: 'cheapest',
        },
        { name: 'sg', targets: [{ backend: 'sglang', model: sglang.options.model }] },
        { name: 'ext', targets: [{ backend: 'external', model: external.options.model }] },
        { name: 'embed', targets: [{ backend: 'vllm', model: vllm.options.model }] },
      ],
      redis: redisSection(redis.url),
      auth: {
        mode: 'keys+jwt',
        jwt: { jwksUrl: `http://127.0.0.1:${jwksPort}/jwks.json`, issuer: 'idp', audience: 'swy' },
        keys: [{ id: 'app', hash: key.hash, tenant: 'acme', tpm: 1_000_000, budget: { amount: 10, period: 'day' } }],
      },
      cache: { mode: 'deterministic', encryptionKey: 'a'.repeat(64) },
      tracing: { enabled: true, endpoint: `http://127.0.0.1:${otlpPort}/v1/traces` },
    },
    15_000,
    { nodeArgs: ['--import', './test/helpers/connect-recorder.ts'], env: { SWY_CONNECT_LOG: log } },
  );
});

afterAll(async () => {
  await gateway?.close();
  await Promise.all([...(sims ?? []).map((sim) => sim.close()), redis?.stop()]);
  await new Promise((resolve) => jwksServer?.close(resolve));
  await new Promise((resolve) => otlpServer?.close(resolve));
  if (directory) await rm(directory, { recursive: true, force: true });
});

it('connects to nothing but the configured backends, Redis, the JWKS URL and the OTLP endpoint', { timeout: 60_000 }, async () => {
  const client = new OpenAI({ apiKey: key.secret, baseURL: gateway.baseURL, maxRetries: 0 });
  for (const model of ['chat', 'sg', 'ext']) {
    const answer = await client.chat.completions.create({ model, messages: [{ role: 'user', content: `hello ${model}` }], temperature: 0, max_tokens: 8 });
    expect(answer.choices[0]?.message.content).toBeTruthy();
    const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'stream please' }], max_tokens: 8, stream: true });
    let chunks = 0;
    for await (const _chunk of stream) chunks++;
    expect(chunks).toBeGreaterThan(0);
  }
  // A cache hit (Redis), embeddings, Responses (stored in Redis), Anthropic Messages, models.
  await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hello chat' }], temperature: 0, max_tokens: 8 });
  expect((await client.embeddings.create({ model: 'embed', input: 'air gap' })).data).toHaveLength(1);
  const response = await client.responses.create({ model: 'chat', input: 'hi', max_output_tokens: 8, store: true });
  expect((await client.responses.retrieve(response.id)).id).toBe(response.id);
  const messages = await postJson(gateway.url, '/v1/messages', { model: 'chat', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }, { key: key.secret });
  expect(messages.status).toBe(200);
  expect((await client.models.list()).data.length).toBeGreaterThan(0);
  // A bearer JWT: the JWKS is fetched from its URL.
  const withToken = new OpenAI({ apiKey: bearer, baseURL: gateway.baseURL, maxRetries: 0 });
  expect((await withToken.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'jwt' }], max_tokens: 4 })).choices).toHaveLength(1);
  // Admin listener and metrics.
  const adminUrl = gateway.logs.map((line) => JSON.parse(line) as { msg?: string; url?: string }).find((line) => line.msg === 'admin and metrics listener')?.url;
  expect(adminUrl).toBeTruthy();
  expect((await getJson(adminUrl as string, '/admin/backends', { authorization: `Bearer ${adminToken}` })).status).toBe(200);
  expect((await getJson(adminUrl as string, '/metrics', { authorization: `Bearer ${adminToken}` })).status).toBe(200);
  // Let probes, scrapes and discovery run a few rounds, and the spans go out (batched, within 5 s).
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  await waitFor(() => exports > 0, 10_000, 'an OTLP export');

  const attempts = (await readFile(log, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Attempt);
  const allowedPorts = new Set([...sims.map((sim) => Number(new URL(sim.url).port)), Number(new URL(redis.url).port), jwksPort, otlpPort]);
  const loopback = new Set(['127.0.0.1', 'localhost', '::1']);
  const tcp = attempts.filter((attempt) => attempt.type === 'tcp');
  // The test's traffic went through: the recorder saw connections to every backend and to Redis.
  expect(new Set(tcp.map((attempt) => attempt.port))).toEqual(allowedPorts);
  for (const attempt of tcp) {
    expect(loopback.has(attempt.host ?? ''), `connect to ${attempt.host}:${attempt.port}`).toBe(true);
    expect(allowedPorts.has(attempt.port ?? -1), `connect to ${attempt.host}:${attempt.port}`).toBe(true);
  }
  // Name lookups only for the configured hosts (a client may "look up" an IP literal; it resolves locally);
  // no UDP, no Unix sockets, no DNS resolver queries.
  const lookups = new Set(attempts.filter((attempt) => attempt.type === 'lookup').map((attempt) => attempt.host));
  expect(lookups.has('localhost')).toBe(true);
  for (const host of lookups) expect(['localhost', '127.0.0.1'], `lookup of ${host}`).toContain(host);
  expect(attempts.filter((attempt) => attempt.type !== 'tcp' && attempt.type !== 'lookup')).toEqual([]);
});
