/**
 * Micro benchmarks of the per-request code paths that need no processes:
 * JSON body splicing, per-chunk SSE edits, routing decisions, per-request metrics.
 *
 *   node bench/micro.ts [--filter splice] [--samples 5] [--sample-ms 60] [--cpu 1]
 *
 * Each case: ~200 ms warm-up, iterations calibrated so one sample takes about
 * --sample-ms, then --samples timed samples; reports ns/op as the median (and
 * min…max) of the samples. Results go to stdout and bench/results/micro-latest.json.
 * Modules that are missing or changed shape are reported as skipped, not fatal.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { policyNames } from '../src/routing/types.ts';
import { allowedCpus, pinSelf } from './processes.ts';

const { values } = parseArgs({
  options: {
    filter: { type: 'string' },
    samples: { type: 'string', default: '5' },
    'sample-ms': { type: 'string', default: '60' },
    cpu: { type: 'string' },
  },
});
const samples = Math.max(1, Number(values.samples));
const sampleMs = Math.max(5, Number(values['sample-ms']));
if (values.cpu !== undefined && !pinSelf(Number(values.cpu))) console.warn(`[micro] could not pin to CPU ${values.cpu}`);

interface Result {
  name: string;
  nsPerOp?: number;
  minNs?: number;
  maxNs?: number;
  opsPerSample?: number;
  skipped?: string;
}

const results: Result[] = [];
let sink = 0;

function consume(value: unknown): void {
  // Keeps results observable so the optimiser cannot drop the call.
  if (typeof value === 'string') sink += value.length;
  else if (value !== undefined && value !== null) sink += 1;
}

function bench(name: string, fn: () => unknown): void {
  if (values.filter && !name.includes(values.filter)) return;
  // Warm-up and calibration.
  let iterations = 1;
  const warmupEnd = performance.now() + 200;
  while (performance.now() < warmupEnd) {
    const start = performance.now();
    for (let i = 0; i < iterations; i++) consume(fn());
    const took = performance.now() - start;
    if (took < sampleMs / 4) iterations *= 2;
  }
  const perOp = (() => {
    const start = performance.now();
    for (let i = 0; i < iterations; i++) consume(fn());
    return (performance.now() - start) / iterations;
  })();
  iterations = Math.max(1, Math.round(sampleMs / Math.max(perOp, 1e-6)));
  const times: number[] = [];
  for (let s = 0; s < samples; s++) {
    const start = performance.now();
    for (let i = 0; i < iterations; i++) consume(fn());
    times.push(((performance.now() - start) * 1e6) / iterations);
  }
  times.sort((a, b) => a - b);
  const result: Result = {
    name,
    nsPerOp: times[Math.floor(times.length / 2)] as number,
    minNs: times[0] as number,
    maxNs: times[times.length - 1] as number,
    opsPerSample: iterations,
  };
  results.push(result);
  console.log(`${name.padEnd(58)} ${formatNs(result.nsPerOp as number).padStart(10)}/op  (${formatNs(result.minNs as number)}…${formatNs(result.maxNs as number)})`);
}

function skip(name: string, reason: string): void {
  if (values.filter && !name.includes(values.filter)) return;
  results.push({ name, skipped: reason });
  console.log(`${name.padEnd(58)} skipped: ${reason}`);
}

function formatNs(ns: number): string {
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e4) return `${(ns / 1e3).toFixed(1)} µs`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} µs`;
  return `${ns.toFixed(0)} ns`;
}

async function tryImport<T>(path: string): Promise<T | string> {
  try {
    return (await import(path)) as T;
  } catch (error) {
    return (error as Error).message.split('\n')[0] ?? 'import failed';
  }
}

// ---------------------------------------------------------------- inputs

const chatBody = JSON.stringify({
  model: 'chat',
  messages: [
    { role: 'system', content: 'You are a helpful assistant.' },
    {
      role: 'user',
      content:
        'Summarise the following in one sentence: the quick brown fox jumps over the lazy dog while the gateway relays tokens, the quick brown fox jumps over the lazy dog while the gateway relays tokens',
    },
  ],
  max_tokens: 256,
  temperature: 0.7,
  stream: true,
});
/** A 1 MiB prompt body; `quoted`: an escaped quote and newline every ~50 bytes (code, JSON in prompts). */
function bigBodyOf(quoted: boolean): string {
  const line = quoted ? 'lorem ipsum dolor sit amet, "quoted" text\n and more ' : 'lorem ipsum dolor sit amet, consectetur adipiscing elit ';
  return JSON.stringify({
    model: 'chat',
    messages: [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: line.repeat(Math.ceil(1_048_576 / line.length)).slice(0, 1_048_576) },
    ],
    max_tokens: 256,
    stream: true,
  });
}
const bigBody = bigBodyOf(false);
const bigQuotedBody = bigBodyOf(true);
const sseChunk = JSON.stringify({
  id: 'chatcmpl-6b0b45f6-35d8-439b-a785-98c64ca173be',
  object: 'chat.completion.chunk',
  created: 1795442602,
  model: 'Qwen/Qwen3-8B',
  choices: [{ index: 0, delta: { content: ' golden' }, logprobs: null, finish_reason: null }],
});
const usageChunk = JSON.stringify({
  id: 'chatcmpl-6b0b45f6-35d8-439b-a785-98c64ca173be',
  object: 'chat.completion.chunk',
  created: 1795442602,
  model: 'Qwen/Qwen3-8B',
  choices: [],
  usage: { prompt_tokens: 42, total_tokens: 62, completion_tokens: 20, prompt_tokens_details: null },
});
const nullUsageChunk = sseChunk.replace(/}$/, ',"usage":null}');

// ---------------------------------------------------------------- cases

console.log(`micro benchmarks · Node ${process.version} · ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'} · CPUs ${allowedCpus()} · median of ${samples} × ~${sampleMs} ms`);
console.log(`bodies: chat ${chatBody.length} B, big ${(bigBody.length / 1048576).toFixed(2)} MiB; SSE chunk ${sseChunk.length} B\n`);

bench('baseline: JSON.parse chat body (300 B)', () => JSON.parse(chatBody));

type SpliceModule = typeof import('../src/wire/json-splice.ts');
const splice = await tryImport<SpliceModule>('../src/wire/json-splice.ts');
if (typeof splice === 'string') skip('json-splice', splice);
else {
  const modelEdit = [{ key: 'model', value: '"Qwen/Qwen3-8B"' }];
  const streamEdits = [...modelEdit, { key: 'stream_options', value: '{"include_usage":true}' }];
  bench('spliceTopLevel chat body: model', () => splice.spliceTopLevel(chatBody, modelEdit));
  bench('spliceTopLevel chat body: model + stream_options', () => splice.spliceTopLevel(chatBody, streamEdits));
  bench('spliceTopLevel 1 MiB prompt body: model', () => splice.spliceTopLevel(bigBody, modelEdit));
  bench('spliceTopLevel 1 MiB prompt body: model + stream_options', () => splice.spliceTopLevel(bigBody, streamEdits));
  bench('spliceTopLevel 1 MiB prompt, quote every 50 B: model + stream_options', () => splice.spliceTopLevel(bigQuotedBody, streamEdits));
  bench('baseline: JSON.parse 1 MiB prompt body', () => JSON.parse(bigBody));
  // String edits are lazy in V8 (ropes): the copy happens when the result is
  // flattened, at the latest when it is encoded for the socket. These two show
  // the whole cost of the edit up to bytes ready to send.
  bench('baseline: Buffer.from 1 MiB body (encode for the socket)', () => Buffer.from(bigBody));
  bench('spliceTopLevel 1 MiB: model + stream_options, then Buffer.from', () => Buffer.from(splice.spliceTopLevel(bigBody, streamEdits)));
}

type ChunkModule = typeof import('../src/wire/chunk-edit.ts');
const chunk = await tryImport<ChunkModule>('../src/wire/chunk-edit.ts');
if (typeof chunk === 'string') skip('chunk-edit', chunk);
else {
  const publicJson = JSON.stringify('chat');
  bench('rewriteModel per SSE chunk', () => chunk.rewriteModel(sseChunk, publicJson));
  bench('extractUsage per SSE chunk (no usage member)', () => chunk.extractUsage(sseChunk));
  bench('extractUsage per SSE chunk ("usage":null)', () => chunk.extractUsage(nullUsageChunk));
  bench('extractUsage usage-only chunk', () => chunk.extractUsage(usageChunk));
  if (typeof chunk.isUsageOnlyChunk === 'function') bench('isUsageOnlyChunk per SSE chunk', () => chunk.isUsageOnlyChunk(sseChunk));
}

// Routing. The API has changed shape before (planAttempts → decide/Router), so
// everything here is looked up at run time and skipped when absent.
interface Candidate {
  backend: string;
  model: string;
  weight: number;
  healthy: boolean;
  circuit: 'closed' | 'open' | 'half-open';
  inflight: number;
  maxConcurrency: number;
  queued: number | undefined;
  running: number | undefined;
  slots: number | undefined;
  kvCacheUsage: number | undefined;
  metricsStale: boolean;
  ttftMs: number | undefined;
  tpotMs: number | undefined;
  contextLength: number | undefined;
  cost: { inputPer1M?: number; outputPer1M?: number; perHour?: number };
  throughputTokensPerSecond: number | undefined;
}

function candidates(count: number): Candidate[] {
  return Array.from({ length: count }, (_, index) => ({
    backend: `gpu-${index}`,
    model: 'Qwen/Qwen3-8B',
    weight: 1 + (index % 3),
    healthy: true,
    circuit: 'closed' as const,
    inflight: (index * 7) % 40,
    maxConcurrency: 256,
    queued: index % 4,
    running: (index * 7) % 40,
    slots: undefined,
    kvCacheUsage: (index % 10) / 10,
    metricsStale: false,
    ttftMs: 80 + ((index * 37) % 200),
    tpotMs: 20 + ((index * 13) % 30),
    contextLength: 32768,
    cost: index % 2 === 0 ? { inputPer1M: 0.6, outputPer1M: 2.4 } : { perHour: 0.35 + index / 100 },
    throughputTokensPerSecond: 800 + index * 10,
  }));
}

/** Mixed signals: stale metrics, llama.cpp slots, unmeasured perHour costs, uneven weights and load. */
function mixedCandidates(count: number): Candidate[] {
  return Array.from({ length: count }, (_, index) => ({
    backend: `backend-${index}`,
    model: 'm',
    weight: 1 + (index % 3),
    healthy: true,
    circuit: 'closed' as const,
    inflight: index % 5,
    maxConcurrency: 64,
    queued: index % 3 === 0 ? undefined : index % 4,
    running: index % 3 === 0 ? undefined : 4,
    slots: index % 2 === 0 ? 4 : undefined,
    kvCacheUsage: undefined,
    metricsStale: index % 3 === 0,
    ttftMs: 150 + index * 10,
    tpotMs: 15 + index,
    contextLength: 8192,
    cost: index % 4 === 0 ? { perHour: 2 + index } : { inputPer1M: 0.1 * index, outputPer1M: 0.3 * index },
    throughputTokensPerSecond: index % 8 === 0 ? undefined : 800,
  }));
}

type Decide = (candidates: readonly Candidate[], request: Record<string, unknown>, random?: () => number, loadFactor?: number) => { order: string[] };
const decideModule = await tryImport<{ decide?: Decide }>('../src/routing/decide.ts');
const planModule = await tryImport<{ planAttempts?: (route: unknown, random?: () => number) => unknown }>('../src/routing/plan.ts');
if (typeof decideModule !== 'string' && typeof decideModule.decide === 'function') {
  const decide = decideModule.decide;
  const request = (policy: string, affinityKey?: string) => ({
    policy,
    promptTokens: 120,
    maxTokens: 256,
    context: { promptFloor: () => 120, maxTokens: 256, minOutput: 1 },
    affinityKey,
    slo: undefined,
    onSloMiss: 'fallback',
    costWeight: 0.5,
  });
  let seed = 1;
  const random = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  for (const count of [1, 4, 16]) {
    const list = candidates(count);
    for (const policy of policyNames) {
      if (count !== 16 && policy !== 'least-loaded') continue;
      bench(`decide ${policy}, ${count} backend${count === 1 ? '' : 's'}`, () => decide(list, request(policy), random));
    }
  }
  const list16 = candidates(16);
  bench('decide least-loaded + affinity key, 16 backends', () => decide(list16, request('least-loaded', 'a1b2c3d4e5f6'), random));
  // Every policy with an affinity key and a TTFT objective over mixed signals; each decision must list all 16.
  const mixed = mixedCandidates(16);
  for (const policy of policyNames) {
    const withSlo = { ...request(policy, 'a1b2c3d4e5f6'), slo: { ttftMs: 2000 } };
    const listed = decide(mixed, withSlo, random).order.length;
    if (listed !== 16) throw new Error(`decide ${policy} listed ${listed} of 16 mixed backends`);
    bench(`decide ${policy} + affinity + SLO, 16 mixed backends`, () => decide(mixed, withSlo, random));
  }
} else {
  skip('decide (src/routing/decide.ts)', typeof decideModule === 'string' ? decideModule : 'no decide export');
}

// The whole Router.plan (snapshot of live state + decide) over a 16-backend route.
const configModule = await tryImport<{ validateConfig?: (raw: unknown) => unknown }>('../src/config/load.ts');
const registryModule = await tryImport<{ BackendRegistry?: new (config: unknown) => { routes: Map<string, unknown>; close(): Promise<void> } }>('../src/backends/registry.ts');
const routerModule = await tryImport<{ Router?: new (registry: unknown) => { plan(route: unknown, input: Record<string, unknown>): unknown } }>('../src/routing/router.ts');
if (
  typeof configModule !== 'string' &&
  configModule.validateConfig &&
  typeof registryModule !== 'string' &&
  registryModule.BackendRegistry &&
  typeof routerModule !== 'string' &&
  routerModule.Router
) {
  try {
    const backends = Array.from({ length: 16 }, (_, index) => ({ id: `gpu-${index}`, kind: 'vllm', url: `http://10.0.0.${index + 1}:8000` }));
    const config = configModule.validateConfig({
      backends,
      models: [{ name: 'chat', targets: backends.map((backend) => ({ backend: backend.id, model: 'Qwen/Qwen3-8B' })) }],
    });
    const registry = new registryModule.BackendRegistry(config);
    const router = new routerModule.Router(registry);
    const route = registry.routes.get('chat');
    const input = { policy: 'least-loaded', promptTokens: 120, maxTokens: 256, context: { promptFloor: () => 120, maxTokens: 256, minOutput: 1 }, affinityKey: undefined };
    router.plan(route, input);
    bench('Router.plan least-loaded, 16 backends (snapshot + decide)', () => router.plan(route, input));
    bench('Router.plan cheapest, 16 backends (snapshot + decide)', () => router.plan(route, { ...input, policy: 'cheapest' }));
    await registry.close();
  } catch (error) {
    skip('Router.plan, 16 backends', (error as Error).message.split('\n')[0] ?? 'failed');
  }
} else {
  skip('Router.plan, 16 backends', 'config/registry/router modules not importable');
}

if (typeof planModule !== 'string' && typeof planModule.planAttempts === 'function') {
  skip('planAttempts', 'src/routing/plan.ts exists again: add a case for it');
}

type EstimateModule = { estimatePromptTokens?: (json: Record<string, unknown>) => number };
const estimate = await tryImport<EstimateModule>('../src/proxy/estimate.ts');
const parsedChat = JSON.parse(chatBody) as Record<string, unknown>;
if (typeof estimate !== 'string' && estimate.estimatePromptTokens) {
  const fn = estimate.estimatePromptTokens;
  bench('estimatePromptTokens chat body', () => fn(parsedChat));
} else skip('estimatePromptTokens', typeof estimate === 'string' ? estimate : 'no estimatePromptTokens export');
const affinity = await tryImport<{ affinityKeyFor?: (json: Record<string, unknown>) => string | undefined }>('../src/routing/affinity.ts');
if (typeof affinity !== 'string' && affinity.affinityKeyFor) {
  const fn = affinity.affinityKeyFor;
  bench('affinityKeyFor chat body', () => fn(parsedChat));
} else skip('affinityKeyFor', typeof affinity === 'string' ? affinity : 'no affinityKeyFor export');

// GatewayMetrics.observe on a typical successful non-streaming answer (runs once per request).
type MetricsModule = { GatewayMetrics?: new (registry: unknown, backends: unknown, router: unknown) => { observe(record: unknown, totalMs: number): void } };
const metricsModule = await tryImport<MetricsModule>('../src/metrics/metrics.ts');
const promModule = await tryImport<{ Registry?: new () => { metrics(): Promise<string> } }>('prom-client');
const recordModule = await tryImport<{ newRecord?: (requestId: string, startedAt: number) => Record<string, unknown> }>('../src/proxy/record.ts');
if (
  typeof metricsModule !== 'string' &&
  metricsModule.GatewayMetrics &&
  typeof promModule !== 'string' &&
  promModule.Registry &&
  typeof recordModule !== 'string' &&
  recordModule.newRecord
) {
  try {
    const metrics = new metricsModule.GatewayMetrics(new promModule.Registry(), { byId: new Map() }, {});
    const record = Object.assign(recordModule.newRecord('bench', 0), {
      endpoint: 'chat',
      model: 'chat',
      backend: 'sim',
      stream: false,
      status: 200,
      upstreamMs: 0,
      attempts: 1,
      usage: { prompt_tokens: 42, completion_tokens: 20, total_tokens: 62 },
      routeReason: 'least-loaded',
      cache: 'bypass',
    });
    // A spread of durations so the histograms see different buckets.
    const totals = [12.5, 48, 180, 730, 1240, 2900, 95, 410];
    let turn = 0;
    bench('GatewayMetrics.observe non-streaming 200 chat (usage, routeReason, cache bypass)', () => {
      const totalMs = totals[turn++ & 7] as number;
      record.upstreamMs = totalMs - 0.4;
      metrics.observe(record, totalMs);
      return record;
    });
  } catch (error) {
    skip('GatewayMetrics.observe', (error as Error).message.split('\n')[0] ?? 'failed');
  }
} else skip('GatewayMetrics.observe', 'metrics/prom-client/record modules not importable');

// ---------------------------------------------------------------- security controls (issue 12)
// The guard per KiB of prompt (clean text, and text with an address, a card and a key every ~500 B), redaction,
// the zone lookup, sealing one audit record and hashing the request body, a remembered JWT; then a first JWT
// verification per algorithm (async, timed as a serial loop).
{
  const { GuardScanner, guardCategories } = await import('../src/guard/detect.ts');
  const { redact } = await import('../src/guard/policy.ts');
  const scanner = new GuardScanner(guardCategories);
  const prose = 'The quarterly report shows revenue grew 12% to 4.2 million while costs fell; see section 3.1 for details. ';
  const pii = 'Contact jane.doe@example.com or +44 20 7946 0958, card 4111 1111 1111 1111, key AKIAIOSFODNN7EXAMPLE. ';
  const bodyOf = (kib: number, dirty: boolean) => {
    let text = '';
    while (text.length < kib * 1024) text += dirty && text.length % 500 < prose.length ? pii : prose;
    return JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: text.slice(0, kib * 1024) }] });
  };
  const clean1 = bodyOf(1, false);
  const clean16 = bodyOf(16, false);
  const dirty1 = bodyOf(1, true);
  const dirty16 = bodyOf(16, true);
  bench('guard scan 1 KiB clean prompt', () => scanner.scan(clean1));
  bench('guard scan 16 KiB clean prompt', () => scanner.scan(clean16));
  bench('guard scan 1 KiB prompt with PII', () => scanner.scan(dirty1));
  bench('guard scan 16 KiB prompt with PII', () => scanner.scan(dirty16));
  const findings16 = scanner.scan(dirty16);
  bench('guard redact 16 KiB prompt with PII (after the scan)', () => redact(dirty16, findings16));
  const { ZonePolicy } = await import('../src/routing/zones.ts');
  const zones = new ZonePolicy({ zones: { onprem: { sensitive: true } }, tenants: { vault: { allowedZones: ['onprem'] } }, backends: [] } as never);
  bench('zones: allowed set for a confined tenant, sensitive request', () => zones.allowed(undefined, 'vault', true));
  const { AuditChain } = await import('../src/audit/record.ts');
  const { createHash } = await import('node:crypto');
  const chain = new AuditChain('k'.repeat(40));
  const fields = {
    time: new Date().toISOString(),
    type: 'request' as const,
    requestId: '6b0b45f6-35d8-439b-a785-98c64ca173be',
    tenant: 'acme',
    keyId: 'app',
    surface: 'chat',
    model: 'chat',
    backend: 'onprem',
    zone: 'onprem',
    status: 200,
    promptTokens: 42,
    completionTokens: 20,
    cache: 'bypass',
  };
  bench('audit: seal one request record (canonical JSON + HMAC-SHA256)', () => chain.seal(fields));
  bench('audit: SHA-256 of a 1 KiB request body', () => createHash('sha256').update(clean1).digest('hex'));
  bench('audit: SHA-256 of a 16 KiB request body', () => createHash('sha256').update(clean16).digest('hex'));

  const { JwtVerifier } = await import('../src/limits/jwt.ts');
  const { SignJWT, exportJWK, generateKeyPair } = await import('jose');
  const { writeFileSync: write, mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
    if (values.filter && !`jwt ${alg}`.includes(values.filter) && !'jwt'.includes(values.filter)) continue;
    const { privateKey, publicKey } = await generateKeyPair(alg);
    const file = join(mkdtempSync(join(tmpdir(), 'swy-bench-')), 'jwks.json');
    write(file, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k', alg }] }));
    const config = {
      jwksFile: file,
      issuer: 'idp',
      audience: 'swy',
      algorithms: [alg],
      clockSkewSeconds: 30,
      jwksTimeoutMs: 1000,
      jwksCooldownMs: 1000,
      jwksMaxAgeMs: 60000,
      jwksMaxBytes: 1 << 20,
      maxTokenBytes: 16384,
      claims: { tenant: 'tenant', subject: 'sub', models: 'models', rpm: 'rpm', tpm: 'tpm', budget: 'budget', maxTokensCap: 'max_tokens_cap', zones: 'zones', guard: 'guard' },
    };
    const count = 300;
    const tokens = await Promise.all(
      Array.from({ length: count }, (_unused, index) =>
        new SignJWT({ tenant: 'acme', n: index }).setProtectedHeader({ alg, kid: 'k' }).setIssuer('idp').setAudience('swy').setExpirationTime('10m').sign(privateKey),
      ),
    );
    const fresh = new JwtVerifier({ ...config, cacheSize: 0 } as never);
    for (const token of tokens.slice(0, 20)) await fresh.verify(token); // warm-up
    const started = performance.now();
    for (const token of tokens) await fresh.verify(token);
    const nsPerOp = ((performance.now() - started) * 1e6) / count;
    results.push({ name: `jwt: verify a new ${alg} token (signature, claims)`, nsPerOp, minNs: nsPerOp, maxNs: nsPerOp, opsPerSample: count });
    console.log(`${`jwt: verify a new ${alg} token (signature, claims)`.padEnd(58)} ${formatNs(nsPerOp).padStart(10)}/op`);
    const remembering = new JwtVerifier({ ...config, cacheSize: 10_000 } as never);
    await remembering.verify(tokens[0] as string);
    const again = performance.now();
    for (let index = 0; index < 20_000; index++) await remembering.verify(tokens[0] as string);
    const rememberedNs = ((performance.now() - again) * 1e6) / 20_000;
    results.push({ name: `jwt: a remembered ${alg} token`, nsPerOp: rememberedNs, minNs: rememberedNs, maxNs: rememberedNs, opsPerSample: 20_000 });
    console.log(`${`jwt: a remembered ${alg} token`.padEnd(58)} ${formatNs(rememberedNs).padStart(10)}/op`);
  }
}

if (values.filter) {
  console.log(`\n(sink ${sink > 0 ? 'ok' : 0}) --filter given: bench/results/micro-latest.json left as it was`);
  process.exit(0);
}
const outDir = join(fileURLToPath(new URL('.', import.meta.url)), 'results');
mkdirSync(outDir, { recursive: true });
writeFileSync(
  join(outDir, 'micro-latest.json'),
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model, samples, sampleMs, results: results.map((r) => ({ ...r, nsPerOp: r.nsPerOp && Number(r.nsPerOp.toPrecision(4)), minNs: r.minNs && Number(r.minNs.toPrecision(4)), maxNs: r.maxNs && Number(r.maxNs.toPrecision(4)) })) }, null, 1)}\n`,
);
console.log(`\n(sink ${sink > 0 ? 'ok' : 0}) wrote bench/results/micro-latest.json`);
