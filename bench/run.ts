/**
 * `npm run bench`: the load scenarios of bench/README.md, measured
 * side by side against three targets in one run — the simulator itself
 * (direct), the thinnest Node proxy (limit, bench/limit-proxy.ts) and the
 * Switchyard gateway — alternating direct, limit, switchyard per repetition.
 *
 * Pinning: this process (the load generator) and the simulator run on CPU 0,
 * the limit proxy and the gateway on CPU 1 (`taskset`). See bench/README.md.
 *
 *   npm run bench -- [--quick] [--duration S] [--reps N] [--warmup S] [--jit-warmup S] [--no-freeze]
 *                    [--scenarios paced-500,saturation-32] [--targets direct,limit,switchyard]
 *                    [--gateway-root DIR] [--baseline-root DIR] [--log-level info] [--connections 128] [--no-pin] [--nice=-10] [--out DIR]
 *                    [--redis] [--tracing]
 *                    [--workers N|auto] [--baseline-workers N|auto] [--gateway-cpus LIST] [--worker-quota F]
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { arch, cpus, loadavg, platform, release, setPriority, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { request } from 'undici';
import { type RequestShape, runClosed, runPaced } from './driver.ts';
import {
  allowedCpus,
  childPids,
  cpuBusyMicros,
  cpuMicros,
  freePort,
  limitCpu,
  pinSelf,
  type Service,
  startService,
  stopAll,
  taskset,
  treeCpuMicros,
  treeRssMiB,
} from './processes.ts';
import { buildChecks, type Cell, markdown, type MemoryFigures, type ScenarioSpec, summarise, type TargetName, targetNames } from './report.ts';

const benchDir = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = resolve(benchDir, '..');

// ---------------------------------------------------------------- options

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    reps: { type: 'string' },
    warmup: { type: 'string' },
    'jit-warmup': { type: 'string' },
    'no-freeze': { type: 'boolean', default: false },
    scenarios: { type: 'string' },
    targets: { type: 'string' },
    'gateway-root': { type: 'string' },
    'baseline-root': { type: 'string' },
    'log-level': { type: 'string' },
    connections: { type: 'string' },
    nice: { type: 'string' },
    'no-pin': { type: 'boolean', default: false },
    out: { type: 'string' },
    redis: { type: 'boolean', default: false },
    tracing: { type: 'boolean', default: false },
    workers: { type: 'string' },
    'baseline-workers': { type: 'string' },
    'gateway-cpus': { type: 'string' },
    'worker-quota': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

const scenarioList: ScenarioSpec[] = [
  { id: 'paced-500', kind: 'paced', stream: false, maxTokens: 8, rate: 500, description: 'non-streaming, 500 req/s evenly paced' },
  { id: 'paced-1000', kind: 'paced', stream: false, maxTokens: 8, rate: 1000, description: 'non-streaming, 1,000 req/s evenly paced' },
  { id: 'paced-100-stream', kind: 'paced', stream: true, maxTokens: 20, rate: 100, description: 'streaming (20 tokens), 100 req/s evenly paced' },
  { id: 'saturation-32', kind: 'closed', stream: false, maxTokens: 8, concurrency: 32, description: 'non-streaming, closed loop, 32 in flight' },
  { id: 'saturation-256', kind: 'closed', stream: false, maxTokens: 8, concurrency: 256, description: 'non-streaming, closed loop, 256 in flight' },
  { id: 'saturation-32-stream', kind: 'closed', stream: true, maxTokens: 20, concurrency: 32, description: 'streaming (20 tokens), closed loop, 32 in flight' },
  {
    id: 'paced-500-cache-hit',
    kind: 'paced',
    stream: false,
    maxTokens: 8,
    rate: 500,
    cache: 'hit',
    description: 'one deterministic body (temperature 0), 500 req/s: Switchyard answers from its response cache',
  },
  {
    id: 'saturation-32-cache-hit',
    kind: 'closed',
    stream: false,
    maxTokens: 8,
    concurrency: 32,
    cache: 'hit',
    description: 'one deterministic body, closed loop, 32 in flight: cache hits',
  },
  {
    id: 'saturation-32-cache-miss',
    kind: 'closed',
    stream: false,
    maxTokens: 8,
    concurrency: 32,
    cache: 'miss',
    description: 'deterministic but unique bodies, closed loop, 32 in flight: every request looks up, misses and stores',
  },
];

if (flags.help) {
  console.log(
    readFileSync(fileURLToPath(import.meta.url), 'utf8')
      .split('*/')[0]
      ?.replace(/^\/\*\*|^ \* ?/gm, ''),
  );
  console.log(`Scenarios: ${scenarioList.map((scenario) => scenario.id).join(', ')}`);
  process.exit(0);
}

function numberOption(flag: string | undefined, env: string | undefined, fallback: number, name: string): number {
  const raw = flag ?? env;
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`--${name} needs a positive number, got "${raw}"`);
    process.exit(2);
  }
  return value;
}

const quick = flags.quick || process.env.BENCH_QUICK === '1';
const durationS = numberOption(flags.duration, process.env.BENCH_DURATION, quick ? 2 : 5, 'duration');
const reps = Math.round(numberOption(flags.reps, process.env.BENCH_REPS, quick ? 1 : 3, 'reps'));
const warmupS = numberOption(flags.warmup, process.env.BENCH_WARMUP, quick ? 0.5 : 1, 'warmup');
/** Seconds of saturation (non-streaming, then streaming) per target before anything is recorded: JIT and connections. */
const jitWarmupS = numberOption(flags['jit-warmup'], process.env.BENCH_JIT_WARMUP, quick ? 0.5 : 1.5, 'jit-warmup');
const pacedConnections = Math.round(numberOption(flags.connections, process.env.BENCH_CONNECTIONS, 128, 'connections'));
const logLevel = flags['log-level'] ?? process.env.BENCH_LOG_LEVEL ?? 'info';
/** Node options for both proxies (experiments with V8 flags); space-separated. */
const proxyNodeArgs = (process.env.BENCH_PROXY_NODE_ARGS ?? '').split(' ').filter((arg) => arg.length > 0);
/** More Node options for the gateway under test (`switchyard`) only, after those; space-separated. */
const gatewayNodeArgs = (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter((arg) => arg.length > 0);
const gatewayRoot = resolve(flags['gateway-root'] ?? process.env.SWITCHYARD_ROOT ?? repoRoot);
/** A second gateway checkout measured as target `baseline`, alternating with `switchyard` in every repetition. */
const baselineRootFlag = flags['baseline-root'] ?? process.env.BENCH_BASELINE_ROOT;
const baselineRoot = baselineRootFlag ? resolve(baselineRootFlag) : undefined;
const niceRaw = flags.nice ?? process.env.BENCH_NICE;
const nice = niceRaw === undefined || niceRaw === '' ? undefined : Number(niceRaw);
if (nice !== undefined && (!Number.isInteger(nice) || nice < -20 || nice > 19)) {
  console.error(`--nice needs an integer from -20 to 19, got "${niceRaw}"`);
  process.exit(2);
}
/** server.workers of the gateway under test (`switchyard`) and of `baseline`; undefined = the config default (1). */
function workersOption(raw: string | undefined, name: string): number | 'auto' | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (raw === 'auto') return 'auto';
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`--${name} needs a whole number >= 1 or auto, got "${raw}"`);
    process.exit(2);
  }
  return value;
}
const gatewayWorkers = workersOption(flags.workers ?? process.env.BENCH_WORKERS, 'workers');
const baselineWorkers = workersOption(flags['baseline-workers'] ?? process.env.BENCH_BASELINE_WORKERS, 'baseline-workers');
const gatewayCpusFlag = flags['gateway-cpus'] ?? process.env.BENCH_GATEWAY_CPUS;
/** --worker-quota F: each serving process of a gateway target (its one process, or each worker) gets F of a CPU (cgroup). */
const workerQuota = (() => {
  const raw = flags['worker-quota'] ?? process.env.BENCH_WORKER_QUOTA;
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!(value > 0 && value <= 1)) {
    console.error(`--worker-quota needs a fraction of one CPU in (0, 1], got "${raw}"`);
    process.exit(2);
  }
  return value;
})();
const outDir = resolve(flags.out ?? process.env.BENCH_OUT ?? join(benchDir, 'results'));

const wantedScenarios = (flags.scenarios ?? process.env.BENCH_SCENARIOS ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
for (const id of wantedScenarios) {
  if (!scenarioList.some((scenario) => scenario.id === id)) {
    console.error(`unknown scenario "${id}"; known: ${scenarioList.map((scenario) => scenario.id).join(', ')}`);
    process.exit(2);
  }
}
const scenarios = wantedScenarios.length > 0 ? scenarioList.filter((scenario) => wantedScenarios.includes(scenario.id)) : scenarioList;
const wantedTargets = (flags.targets ?? process.env.BENCH_TARGETS ?? targetNames.join(','))
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
for (const name of wantedTargets) {
  if (!targetNames.includes(name as TargetName)) {
    console.error(`unknown target "${name}"; known: ${targetNames.join(', ')}`);
    process.exit(2);
  }
}
if (baselineRoot && !wantedTargets.includes('baseline')) wantedTargets.push('baseline');
if (!baselineRoot && wantedTargets.includes('baseline')) {
  if (flags.targets ?? process.env.BENCH_TARGETS) {
    console.error('target "baseline" needs --baseline-root DIR');
    process.exit(2);
  }
  wantedTargets.splice(wantedTargets.indexOf('baseline'), 1);
}
const activeTargets = targetNames.filter((name) => wantedTargets.includes(name));

// ---------------------------------------------------------------- helpers

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));
const notes: string[] = [];
if (workerQuota !== undefined) {
  notes.push(
    `--worker-quota ${workerQuota}: each serving process of a gateway target (its only process, or each cluster worker) was limited to ${workerQuota} of a CPU (its own cgroup), standing in for cores of its own on a machine that has too few.`,
  );
}

function log(message: string): void {
  console.log(`[bench] ${message}`);
}

function git(args: string[]): string | undefined {
  const result = spawnSync('git', ['-C', gatewayRoot, ...args], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

const upstreamModel = 'Qwen/Qwen3-8B';
const publicModel = 'chat';

const varyMarker = '#000000000000';

/**
 * A chat body of exactly `size` bytes (padding in the user message).
 * `deterministic`: temperature 0 (cacheable by default), else 0.7 (the cache
 * bypasses it). `vary`: starts the prompt with a 12-digit slot the driver
 * overwrites with a counter, so every request is different.
 */
function chatBody(
  model: string,
  stream: boolean,
  maxTokens: number,
  options: { deterministic?: boolean; vary?: boolean } = {},
  size = 300,
): { body: Buffer; vary?: { offset: number; width: number } } {
  const make = (pad: string) =>
    JSON.stringify({
      model,
      messages: [
        { role: 'system', content: 'You are a helpful assistant.' },
        { role: 'user', content: `${options.vary ? varyMarker : ''}Summarise the following in one sentence: ${pad}` },
      ],
      max_tokens: maxTokens,
      temperature: options.deterministic ? 0 : 0.7,
      ...(stream ? { stream: true } : {}),
    });
  const words = 'the quick brown fox jumps over the lazy dog while the gateway relays tokens ';
  let pad = '';
  while (Buffer.byteLength(make(pad)) < size) pad += words[pad.length % words.length];
  const body = Buffer.from(make(pad));
  if (!options.vary) return { body };
  return { body, vary: { offset: body.indexOf(varyMarker) + 1, width: varyMarker.length - 1 } };
}

interface Target {
  name: TargetName;
  url: string;
  model: string;
  service: Service | undefined;
}

/**
 * The proxies share one CPU, so a target that just finished its cell would otherwise keep working on it while the
 * next one is measured: V8 collects a gateway's heap once its load stops (tens of ms of mark-compact), which lands
 * as a stall in the next target's tail (an A/A run of one checkout as both gateways gave p99 medians of 1.7 and
 * 8.6 ms by position alone). So every target but the measured one is stopped (SIGSTOP, workers included) during a
 * cell and its warm-up, and continued (SIGCONT) when its turn comes. `--no-freeze` keeps them all running.
 */
const freeze = !flags['no-freeze'] && process.env.BENCH_NO_FREEZE !== '1';
function signalTree(service: Service, signal: NodeJS.Signals): void {
  for (const pid of [service.pid, ...childPids(service.pid)]) {
    try {
      process.kill(pid, signal);
    } catch {
      // exited
    }
  }
}
let frozenTargets: Target[] = [];
function freezeOthers(targets: readonly Target[], measured: Target): void {
  if (!freeze) return;
  if (measured.service) signalTree(measured.service, 'SIGCONT');
  frozenTargets = targets.filter((target) => target !== measured && target.service !== undefined);
  for (const target of frozenTargets) signalTree(target.service as Service, 'SIGSTOP');
}
function thawAll(): void {
  for (const target of frozenTargets) if (target.service) signalTree(target.service, 'SIGCONT');
  frozenTargets = [];
}

function shapeFor(target: Target, scenario: ScenarioSpec): RequestShape {
  const { body, vary } = chatBody(target.model, scenario.stream, scenario.maxTokens, { deterministic: scenario.cache !== undefined, vary: scenario.cache === 'miss' });
  return { path: '/v1/chat/completions', body, stream: scenario.stream, ...(vary ? { vary } : {}) };
}

// ---------------------------------------------------------------- processes

let shuttingDown = false;
async function shutdown(code: number): Promise<never> {
  if (!shuttingDown) {
    shuttingDown = true;
    await stopAll().catch(() => undefined);
  }
  process.exit(code);
}
process.once('SIGINT', () => {
  console.error('\n[bench] interrupted: stopping child processes');
  void shutdown(130);
});
process.once('SIGTERM', () => void shutdown(143));

const cpuCount = cpus().length;
let pin = !flags['no-pin'] && cpuCount >= 2;
if (pin) {
  if (!taskset()) {
    pin = false;
    console.warn('[bench] WARNING: taskset not found: running unpinned; proxies and upstream share cores and look slower than they are.');
    notes.push('Unpinned run (taskset missing): absolute figures are pessimistic; compare only ratios.');
  } else if (!pinSelf(0)) {
    pin = false;
    console.warn(`[bench] WARNING: could not pin the load generator to CPU 0 (allowed: ${allowedCpus()}); running unpinned.`);
    notes.push('Unpinned run (the load generator could not be pinned to CPU 0).');
  }
} else {
  const reason = flags['no-pin'] ? '--no-pin given' : `only ${cpuCount} CPU`;
  console.warn(`[bench] WARNING: running unpinned (${reason}).`);
  notes.push(`Unpinned run (${reason}).`);
}

/** CPUs of the load side (bench + simulator) and of the proxies; undefined when unpinned. */
const loadCpu = pin ? 0 : undefined;
const proxyCpu = pin ? 1 : undefined;
/**
 * CPUs of the gateway targets: --gateway-cpus, else CPU 1 for one worker; for N workers CPUs 1..N when the machine
 * has them, else every CPU (the workers then share CPU 0 with the load generator and the simulator: said in the report).
 */
const gatewayCpus: number | string | undefined = (() => {
  if (!pin) return undefined;
  if (gatewayCpusFlag) return gatewayCpusFlag;
  const most = Math.max(...[gatewayWorkers, baselineWorkers].map((workers) => (workers === 'auto' ? cpuCount : (workers ?? 1))));
  if (most <= 1) return proxyCpu;
  if (cpuCount > most) return `1-${most}`;
  notes.push(
    `The gateway runs ${most} workers on a ${cpuCount}-CPU machine: it is pinned to every CPU (0-${cpuCount - 1}) and shares CPU 0 with the load generator and the simulator.`,
  );
  return `0-${cpuCount - 1}`;
})();

if (nice !== undefined) {
  try {
    setPriority(nice);
  } catch (error) {
    console.warn(`[bench] WARNING: could not set priority ${nice} (${(error as Error).message}); children may fail to start too.`);
  }
  notes.push(`Bench processes ran at nice ${nice}.`);
}

async function startSim(): Promise<{ service: Service; url: string; statsUrl: string }> {
  const port = await freePort();
  const statsPort = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const service = await startService({
    name: 'simulator',
    script: join(benchDir, 'sim-child.ts'),
    args: ['--port', String(port), '--model', upstreamModel, '--max-concurrency', '1024', '--stats-port', String(statsPort)],
    cpu: loadCpu,
    nice,
    cwd: repoRoot,
    readyUrl: `${url}/health`,
  });
  return { service, url, statsUrl: `http://127.0.0.1:${statsPort}/` };
}

let simStatsUrl = '';

/** Inference requests the simulator has received so far (NaN when unreadable). */
async function upstreamRequests(): Promise<number> {
  try {
    const response = await request(simStatsUrl);
    return ((await response.body.json()) as { requests: number }).requests;
  } catch {
    return Number.NaN;
  }
}

async function startLimit(upstream: string): Promise<{ service: Service; url: string }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const service = await startService({
    name: 'limit proxy',
    script: join(benchDir, 'limit-proxy.ts'),
    args: ['--upstream', upstream, '--port', String(port)],
    nodeArgs: proxyNodeArgs,
    cpu: proxyCpu,
    nice,
    cwd: repoRoot,
    readyUrl: `${url}/healthz`,
  });
  return { service, url };
}

/** `--redis`: every request carries an API key checked against Redis-backed limits, and the cache lives in Redis. */
const withRedis = flags.redis || process.env.BENCH_REDIS === '1';
const benchApiKey = 'sk-swy-bench-0123456789abcdefghij';
if (withRedis) process.env.BENCH_API_KEY = benchApiKey;

/** A private redis-server on CPU 0 (with the simulator and the load generator). */
async function startRedisServer(dir: string): Promise<string> {
  const port = await freePort();
  const pin = taskset();
  const argv = ['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  const child = pin && loadCpu !== undefined ? spawn(pin, ['-c', String(loadCpu), ...argv], { stdio: 'ignore' }) : spawn(argv[0] as string, argv.slice(1), { stdio: 'ignore' });
  process.once('exit', () => child.kill('SIGKILL'));
  for (let attempt = 0; attempt < 100; attempt++) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect({ port, host: '127.0.0.1' }, () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (up) return `redis://127.0.0.1:${port}`;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('redis-server did not start (apt-get install redis-server)');
}

/** `--tracing`: the gateway under test (not the baseline) traces every request and exports to a sink in this process. */
const withTracing = flags.tracing || process.env.BENCH_TRACING === '1';
let tracingSink: string | undefined;

/** An OTLP/HTTP sink that reads each export and answers 200 (on CPU 0, with the load generator). */
async function startTracingSink(): Promise<string> {
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => response.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  return `http://127.0.0.1:${(server.address() as { port: number }).port}/v1/traces`;
}

async function startSwitchyard(
  upstream: string,
  dir: string,
  root = gatewayRoot,
  name = 'switchyard',
  workers: number | 'auto' | undefined = gatewayWorkers,
): Promise<{ service: Service; url: string; config: string }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // JSON is YAML: the loader reads it as is. `workers` only when asked for, so an older checkout (baseline) still loads it.
  const config: Record<string, unknown> = {
    server: { host: '127.0.0.1', port, shutdownGraceMs: 1000, ...(workers === undefined ? {} : { workers }) },
    backends: [{ id: 'sim', kind: 'vllm', url: upstream, maxConcurrency: 1024 }],
    models: [{ name: publicModel, targets: [{ backend: 'sim', model: upstreamModel }] }],
    logging: { level: logLevel },
  };
  if (withRedis) {
    config.redis = { url: await startRedisServer(dir) };
    const hash = createHash('sha256').update(benchApiKey).digest('hex');
    config.auth = { mode: 'keys', keys: [{ id: 'bench', hash, tenant: 'bench', rpm: 100_000_000, tpm: 1_000_000_000 }] };
  }
  if (withTracing && name === 'switchyard') {
    tracingSink ??= await startTracingSink();
    config.tracing = { enabled: true, endpoint: tracingSink };
  }
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  const service = await startService({
    name,
    script: join(root, 'src', 'main.ts'),
    args: ['serve', '--config', file],
    nodeArgs: name === 'switchyard' ? [...proxyNodeArgs, ...gatewayNodeArgs] : proxyNodeArgs,
    cpu: gatewayCpus,
    nice,
    cwd: root,
    readyUrl: `${url}/readyz`,
    readyTimeoutMs: 30_000,
  });
  // /readyz answers once the first worker listens: wait for all of them (the merged /metrics counts them).
  const expected = workers === 'auto' ? Number.NaN : (workers ?? 1);
  const deadline = Date.now() + 30_000;
  while (expected > 1 && Date.now() < deadline) {
    const text = await (await request(`${url}/metrics`)).body.text();
    if (Number(/^switchyard_workers (\S+)$/m.exec(text)?.[1]) >= expected) break;
    await sleep(200);
  }
  if (workerQuota !== undefined) {
    const count = workers === 'auto' ? cpuCount : (workers ?? 1);
    const pids = count > 1 ? childPids(service.pid) : [service.pid];
    if (pids.length !== count) throw new Error(`--worker-quota: ${name} has ${pids.length} worker processes, expected ${count}`);
    limitCpu(pids, workerQuota, name);
  }
  return { service, url, config: JSON.stringify(config) };
}

/** One request of each shape per target: answers 200 and names the model the client asked for. */
async function sanityCheck(target: Target): Promise<void> {
  for (const stream of [false, true]) {
    const response = await request(`${target.url}/v1/chat/completions`, {
      method: 'POST',
      headers: withRedis ? { 'content-type': 'application/json', authorization: `Bearer ${benchApiKey}` } : { 'content-type': 'application/json' },
      body: chatBody(target.model, stream, 4).body,
    });
    const text = await response.body.text();
    const kind = stream ? 'streaming' : 'non-streaming';
    const cacheHeader = response.headers['x-switchyard-cache'];
    if (cacheHeader === 'HIT') console.warn(`[bench] WARNING: ${target.name} answered a non-deterministic ${kind} request from its cache`);
    if (response.statusCode !== 200) throw new Error(`${target.name}: ${kind} sanity request answered ${response.statusCode}: ${text.slice(0, 300)}`);
    if (!text.includes(`"model":${JSON.stringify(target.model)}`)) {
      console.warn(`[bench] WARNING: ${target.name} ${kind} answer does not carry model ${target.model}: ${text.slice(0, 200)}`);
    }
    if (stream && !text.includes('[DONE]')) console.warn(`[bench] WARNING: ${target.name} stream did not end with [DONE]`);
  }
}

/** V8 heap (MiB) of a proxy: the limit proxy's /memory, the gateway's prom-client heap gauges. */
async function heapOf(target: Target): Promise<{ heapUsedMiB: number; heapTotalMiB: number } | undefined> {
  try {
    const mib = (bytes: number) => Number((bytes / 1048576).toFixed(1));
    if (target.name === 'limit') {
      const response = await request(`${target.url}/memory`);
      const memory = (await response.body.json()) as { heapUsed: number; heapTotal: number };
      return { heapUsedMiB: mib(memory.heapUsed), heapTotalMiB: mib(memory.heapTotal) };
    }
    if (target.name === 'switchyard' || target.name === 'baseline') {
      const response = await request(`${target.url}/metrics`);
      const text = await response.body.text();
      const used = /^\w*nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1];
      const total = /^\w*nodejs_heap_size_total_bytes(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1];
      if (used === undefined || total === undefined) return undefined;
      return { heapUsedMiB: mib(Number(used)), heapTotalMiB: mib(Number(total)) };
    }
  } catch {}
  return undefined;
}

// ---------------------------------------------------------------- measuring

interface Window {
  start(): void;
  end(): void;
  read(
    ok: number,
  ): Promise<
    Pick<
      Cell,
      'proxyCpuUsPerReq' | 'proxyCpuShare' | 'simCpuUsPerReq' | 'driverCpuUsPerReq' | 'cpu0Share' | 'proxyRssPeakMiB' | 'upstreamPerReq' | 'cpu0OtherShare' | 'cpu1OtherShare'
    >
  >;
}

function cpuWindow(proxy: Service | undefined, sim: Service): Window {
  let t0 = 0;
  let t1 = 0;
  let proxy0 = 0;
  let proxy1 = 0;
  let sim0 = 0;
  let sim1 = 0;
  let self0 = 0;
  let self1 = 0;
  let peak = 0;
  let sampler: NodeJS.Timeout | undefined;
  let busy0: number[] = [];
  let busy1: number[] = [];
  let upstream0: Promise<number> = Promise.resolve(Number.NaN);
  let upstream1: Promise<number> = Promise.resolve(Number.NaN);
  const selfCpu = () => {
    const usage = process.cpuUsage();
    return usage.user + usage.system;
  };
  const sample = () => {
    if (proxy) peak = Math.max(peak, treeRssMiB(proxy.pid));
  };
  return {
    start() {
      t0 = performance.now();
      if (proxy) proxy0 = treeCpuMicros(proxy.pid);
      sim0 = cpuMicros(sim.pid);
      self0 = selfCpu();
      busy0 = cpuBusyMicros();
      upstream0 = upstreamRequests();
      sample();
      sampler = setInterval(sample, 250);
    },
    end() {
      t1 = performance.now();
      if (proxy) proxy1 = treeCpuMicros(proxy.pid);
      sim1 = cpuMicros(sim.pid);
      self1 = selfCpu();
      busy1 = cpuBusyMicros();
      upstream1 = upstreamRequests();
      clearInterval(sampler);
      sample();
    },
    async read(ok) {
      const windowUs = (t1 - t0) * 1000;
      const result: Awaited<ReturnType<Window['read']>> = {
        upstreamPerReq: ((await upstream1) - (await upstream0)) / Math.max(1, ok),
        simCpuUsPerReq: (sim1 - sim0) / Math.max(1, ok),
        driverCpuUsPerReq: (self1 - self0) / Math.max(1, ok),
        cpu0Share: (sim1 - sim0 + self1 - self0) / windowUs,
      };
      const busy = (cpu: number | undefined) => (cpu === undefined ? Number.NaN : (busy1[cpu] ?? Number.NaN) - (busy0[cpu] ?? Number.NaN));
      if (loadCpu !== undefined && proxyCpu !== undefined && (!proxy || proxy.cpus === String(proxyCpu))) {
        // What other processes (and the hypervisor) took from our two CPUs.
        result.cpu0OtherShare = Math.max(0, (busy(loadCpu) - (sim1 - sim0) - (self1 - self0)) / windowUs);
        result.cpu1OtherShare = Math.max(0, (busy(proxyCpu) - (proxy1 - proxy0)) / windowUs);
      }
      if (proxy) {
        result.proxyCpuUsPerReq = (proxy1 - proxy0) / Math.max(1, ok);
        result.proxyCpuShare = (proxy1 - proxy0) / windowUs;
        result.proxyRssPeakMiB = peak;
      }
      return result;
    },
  };
}

async function measure(target: Target, scenario: ScenarioSpec, rep: number, sim: Service, seconds: number, warmup: number): Promise<Cell> {
  const window = cpuWindow(target.service, sim);
  const shape = shapeFor(target, scenario);
  if (scenario.kind === 'paced') {
    const result = await runPaced({
      url: target.url,
      shape,
      rate: scenario.rate as number,
      durationS: seconds,
      warmupS: warmup,
      connections: pacedConnections,
      onWindowStart: () => window.start(),
      onWindowEnd: () => window.end(),
    });
    return {
      scenario: scenario.id,
      target: target.name,
      rep,
      windowS: seconds,
      sent: result.sent,
      ok: result.ok,
      failures: result.failures,
      unfinished: result.unfinished,
      maxInflight: result.maxInflight,
      achievedRate: result.achievedRate,
      latency: result.latency,
      latencyFromScheduled: result.latencyFromScheduled,
      ttfb: result.ttfb,
      lag: result.lag,
      ...(await window.read(result.ok)),
    };
  }
  const result = await runClosed({
    url: target.url,
    shape,
    concurrency: scenario.concurrency as number,
    durationS: seconds,
    warmupS: warmup,
    onWindowStart: () => window.start(),
    onWindowEnd: () => window.end(),
  });
  return {
    scenario: scenario.id,
    target: target.name,
    rep,
    windowS: result.windowS,
    sent: result.completed,
    ok: result.ok,
    failures: result.failures,
    throughput: result.throughput,
    latency: result.latency,
    ...(await window.read(result.ok)),
  };
}

function cellLine(cell: Cell): string {
  const errors = cell.failures.total + (cell.unfinished ?? 0);
  const cpu = cell.proxyCpuUsPerReq !== undefined ? ` proxy ${cell.proxyCpuUsPerReq.toFixed(0)} µs/req` : '';
  const err = errors > 0 ? ` ERRORS ${errors} ${JSON.stringify(cell.failures.kinds)}${cell.unfinished ? ` unfinished ${cell.unfinished}` : ''}` : '';
  const cpu0 = ` cpu0 ${(cell.cpu0Share * 100).toFixed(0)}% (sim ${cell.simCpuUsPerReq.toFixed(0)} + driver ${cell.driverCpuUsPerReq.toFixed(0)} µs/req) upstream/req ${cell.upstreamPerReq?.toFixed(2)}${cell.cpu1OtherShare !== undefined ? ` others cpu0 ${((cell.cpu0OtherShare ?? 0) * 100).toFixed(0)}% cpu1 ${(cell.cpu1OtherShare * 100).toFixed(0)}%` : ''}`;
  if (cell.throughput !== undefined) {
    return `${cell.throughput.toFixed(0)} req/s p50 ${cell.latency.p50.toFixed(2)} ms p99 ${cell.latency.p99.toFixed(2)} ms${cpu}${cpu0}${err}`;
  }
  const ttfb = cell.ttfb && cell.scenario.endsWith('stream') ? ` ttfb p50 ${cell.ttfb.p50.toFixed(2)} p99 ${cell.ttfb.p99.toFixed(2)}` : '';
  return `p50 ${cell.latency.p50.toFixed(2)} p90 ${cell.latency.p90.toFixed(2)} p99 ${cell.latency.p99.toFixed(2)} ms${ttfb} lag p99 ${cell.lag?.p99.toFixed(2)} ms (${cell.achievedRate?.toFixed(0)} req/s)${cpu}${cpu0}${err}`;
}

function roundForJson(_key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isInteger(value)) return Number.isFinite(value) ? Number(value.toPrecision(5)) : null;
  return value;
}

/** Compact but diff-friendly: one line per top-level member, and per element of top-level arrays. */
function resultJson(data: Record<string, unknown>): string {
  const line = (value: unknown) => JSON.stringify(value, roundForJson);
  const members = Object.entries(data).map(([key, value]) => {
    const body = Array.isArray(value) && value.length > 0 && typeof value[0] === 'object' ? `[\n  ${value.map(line).join(',\n  ')}\n ]` : line(value);
    return ` ${JSON.stringify(key)}: ${body}`;
  });
  return `{\n${members.join(',\n')}\n}\n`;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const startedAt = new Date();
  const loadBefore = loadavg();
  const tmp = mkdtempSync(join(tmpdir(), 'switchyard-bench-'));
  // Also on interrupts, which exit without reaching the finally below.
  process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));
  try {
    log(`node ${process.version}, ${cpuCount} CPUs, load average ${loadBefore.map((value) => value.toFixed(2)).join(' ')}`);
    log(`${scenarios.length} scenarios × ${activeTargets.length} targets × ${reps} reps, ${durationS} s per cell after ${warmupS} s warm-up; gateway from ${gatewayRoot}`);
    if (loadBefore[0] !== undefined && loadBefore[0] > 0.5 * cpuCount) {
      console.warn(`[bench] WARNING: the machine is busy (load ${loadBefore[0].toFixed(2)} on ${cpuCount} CPUs): figures will be noisy.`);
      notes.push(`The machine was busy during the run (load average ${loadBefore[0].toFixed(2)} on ${cpuCount} CPUs at the start): expect noise.`);
    }

    const { service: sim, url: upstream, statsUrl } = await startSim();
    simStatsUrl = statsUrl;
    log(`simulator pid ${sim.pid} on CPUs ${sim.cpus} at ${upstream}`);

    const targets: Target[] = [];
    if (activeTargets.includes('direct')) targets.push({ name: 'direct', url: upstream, model: upstreamModel, service: undefined });
    let gatewayConfig: string | undefined;
    if (activeTargets.includes('limit')) {
      const limit = await startLimit(upstream);
      log(`limit proxy pid ${limit.service.pid} on CPUs ${limit.service.cpus} at ${limit.url}`);
      targets.push({ name: 'limit', url: limit.url, model: upstreamModel, service: limit.service });
    }
    if (activeTargets.includes('switchyard')) {
      const gateway = await startSwitchyard(upstream, tmp);
      gatewayConfig = gateway.config;
      log(`switchyard pid ${gateway.service.pid} on CPUs ${gateway.service.cpus} at ${gateway.url} (logging ${logLevel} to /dev/null)`);
      targets.push({ name: 'switchyard', url: gateway.url, model: publicModel, service: gateway.service });
    }
    if (baselineRoot && activeTargets.includes('baseline')) {
      const baseline = await startSwitchyard(upstream, tmp, baselineRoot, 'baseline', baselineWorkers);
      log(`baseline gateway from ${baselineRoot}: pid ${baseline.service.pid} on CPUs ${baseline.service.cpus} at ${baseline.url}`);
      targets.push({ name: 'baseline', url: baseline.url, model: publicModel, service: baseline.service });
    }
    log(`load generator pid ${process.pid} on CPUs ${allowedCpus()}`);

    for (const target of targets) await sanityCheck(target);
    await sleep(500);
    const rss: Partial<Record<TargetName, MemoryFigures>> = {};
    for (const target of targets) {
      if (target.service) rss[target.name] = { idleMiB: treeRssMiB(target.service.pid), peakMiB: 0, afterMiB: Number.NaN, heapIdle: await heapOf(target), heapAfter: undefined };
    }

    // JIT and connection warm-up of every target before anything is recorded.
    const globalWarmup = jitWarmupS;
    for (const target of targets) {
      freezeOthers(targets, target);
      for (const scenario of [scenarioList[3], scenarioList[5]] as ScenarioSpec[]) {
        await runClosed({ url: target.url, shape: shapeFor(target, scenario), concurrency: 32, durationS: globalWarmup, warmupS: 0 });
      }
    }
    log('warm-up done');

    const cells: Cell[] = [];
    for (const scenario of scenarios) {
      for (let rep = 1; rep <= reps; rep++) {
        // The order rotates by one place per repetition, so no target always runs right after the same one (an A/A
        // run kept a position effect even with freezing: the third target measured worse than the second).
        const shift = (rep - 1) % targets.length;
        for (const target of [...targets.slice(shift), ...targets.slice(0, shift)]) {
          freezeOthers(targets, target);
          const cell = await measure(target, scenario, rep, sim, durationS, warmupS);
          cells.push(cell);
          const own = rss[target.name];
          if (own && cell.proxyRssPeakMiB !== undefined) own.peakMiB = Math.max(own.peakMiB, cell.proxyRssPeakMiB);
          log(`${scenario.id.padEnd(20)} rep ${rep} ${target.name.padEnd(10)} ${cellLine(cell)}`);
          await sleep(250);
        }
      }
    }

    thawAll();
    if (freeze && targets.filter((target) => target.service).length > 1) {
      notes.push(
        'Targets not being measured were stopped (SIGSTOP) during each cell, so a proxy that just finished its cell cannot run its post-load GC on the shared CPU while the next one is measured (`--no-freeze` to keep them running).',
      );
    }
    await sleep(2000);
    for (const target of targets) {
      const own = rss[target.name];
      if (own && target.service) {
        own.afterMiB = treeRssMiB(target.service.pid);
        own.heapAfter = await heapOf(target);
      }
    }
    const loadAfter = loadavg();
    const finishedAt = new Date();

    const summaries = summarise(scenarios, cells);
    const lagged = cells.filter((cell) => cell.lag !== undefined && cell.lag.p99 > 5);
    const pacedCount = cells.filter((cell) => cell.lag !== undefined).length;
    if (lagged.length > 0) {
      notes.push(
        `${lagged.length} of ${pacedCount} paced cells had a pacing lag p99 above 5 ms (the load generator's CPU was busy): their tails say more about the machine than about the target.`,
      );
    }
    const others = (pick: (cell: Cell) => number | undefined) =>
      cells
        .map(pick)
        .filter((value): value is number => value !== undefined && Number.isFinite(value))
        .sort((a, b) => a - b);
    const cpu1Others = others((cell) => cell.cpu1OtherShare);
    const cpu0Others = others((cell) => cell.cpu0OtherShare);
    if (cpu1Others.length > 0) {
      const pct = (values: number[], q: number) => `${((values[Math.min(values.length - 1, Math.floor(q * values.length))] ?? 0) * 100).toFixed(0)}%`;
      notes.push(
        `Other processes (not the bench) used a median ${pct(cpu1Others, 0.5)} (max ${pct(cpu1Others, 1)}) of CPU 1 and ${pct(cpu0Others, 0.5)} (max ${pct(cpu0Others, 1)}) of CPU 0 during the measured windows (from /proc/stat); "CPU 1 others" in the closed-loop tables is that share per row.`,
      );
    }
    for (const summary of summaries) {
      if (scenarios.find((scenario) => scenario.id === summary.scenario)?.cache !== undefined) continue;
      for (const name of ['limit', 'switchyard', 'baseline'] as const) {
        const share = summary.targets[name]?.metrics.upstreamPerReq?.median;
        if (share !== undefined && Number.isFinite(share) && share < 0.95) {
          const warning = `${name} called the upstream for only ${(share * 100).toFixed(0)}% of the requests in ${summary.scenario} (a cache?): that row does not measure the proxy path.`;
          console.warn(`[bench] WARNING: ${warning}`);
          notes.push(warning);
        }
      }
    }
    const checks = buildChecks(summaries);
    const gitCommit = git(['rev-parse', '--short', 'HEAD']);
    const dirty = git(['status', '--porcelain', '--', 'src']);
    const cpuModel = cpus()[0]?.model ?? 'unknown CPU';
    let undiciVersion = 'unknown';
    try {
      undiciVersion = (JSON.parse(readFileSync(join(repoRoot, 'node_modules', 'undici', 'package.json'), 'utf8')) as { version: string }).version;
    } catch {}
    const machine = {
      cpus: cpuCount,
      cpuModel,
      memoryGiB: Number((totalmem() / 2 ** 30).toFixed(1)),
      platform: `${platform()} ${release()} ${arch()}`,
      node: process.version,
      undici: undiciVersion,
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadAfter,
      pinned: pin,
      cpusOf: Object.fromEntries([
        ['loadGenerator', allowedCpus()],
        ['simulator', sim.cpus],
        ...targets.filter((target) => target.service).map((target) => [target.name, target.service?.cpus]),
      ]),
    };
    const gateway = {
      root: gatewayRoot,
      commit: gitCommit ?? null,
      srcDirty: dirty === undefined ? null : dirty !== '',
      baselineRoot: baselineRoot ?? null,
      logLevel,
      workers: gatewayWorkers ?? 1,
      baselineWorkers: baselineRoot ? (baselineWorkers ?? 1) : null,
      config: gatewayConfig ? JSON.parse(gatewayConfig) : null,
    };
    notes.push(
      "Latency is measured from the moment a request is handed to the driver's undici Pool; `lag` in the JSON (hand-over − scheduled time) shows how well the pacing held, and `latencyFromScheduled` includes it.",
      'Proxy CPU µs/req is utime+stime of the proxy process over the measured window divided by the OK requests; compare it only between targets at the same load.',
    );
    const header = [
      `${startedAt.toISOString().replace('T', ' ').slice(0, 16)} UTC · ${cpuCount} × ${cpuModel} · Node ${process.version} · undici ${undiciVersion} · gateway ${gitCommit ?? 'no git'}${gateway.srcDirty ? ' (src modified)' : ''} · logging ${logLevel}`,
      `${reps} repetition(s) × ${durationS} s per cell after ${warmupS} s warm-up, targets alternating ${targets.map((target) => target.name).join(' → ')} in the first repetition, the order rotated by one place in each next one; ${machine.pinned ? `proxies pinned to CPU 1${gatewayCpus !== proxyCpu ? ` (the gateway to CPUs ${gatewayCpus})` : ''}, simulator and load generator to CPU 0` : 'UNPINNED'}${gatewayWorkers !== undefined || baselineWorkers !== undefined ? `; gateway workers: switchyard ${gatewayWorkers ?? 1}${baselineRoot ? `, baseline ${baselineWorkers ?? 1}` : ''}` : ''}. Values: median (min…max) over repetitions; "added" = target − direct, paired by repetition. Load average ${loadBefore[0]?.toFixed(2)} before, ${loadAfter[0]?.toFixed(2)} after.`,
    ];
    const md = markdown({ title: 'Switchyard benchmark', header, scenarios, summaries, rss, checks, notes });

    const stamp = startedAt
      .toISOString()
      .replace(/\.\d+Z$/, 'Z')
      .replace(/:/g, '-');
    const json = {
      version: 1,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      options: {
        durationS,
        reps,
        warmupS,
        quick,
        nice: nice ?? 0,
        logLevel,
        scenarios: scenarios.map((scenario) => scenario.id),
        targets: targets.map((target) => target.name),
        pacedConnections,
        bodyBytes: 300,
      },
      machine,
      gateway,
      scenarios,
      rss,
      summaries,
      checks,
      cells,
      notes,
    };
    mkdirSync(outDir, { recursive: true });
    const text = resultJson(json);
    writeFileSync(join(outDir, `${stamp}.json`), text);
    writeFileSync(join(outDir, 'latest.json'), text);
    writeFileSync(join(outDir, 'latest.md'), `${md}\n`);
    console.log(`\n${md}`);
    log(`wrote ${join(outDir, `${stamp}.json`)}, latest.json and latest.md`);
    for (const target of targets) {
      const tail = target.service?.stderrTail();
      if (tail) console.warn(`[bench] ${target.name} wrote to stderr:\n${tail.slice(-2000)}`);
    }
  } finally {
    thawAll();
    await stopAll();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  async (error: unknown) => {
    console.error(`[bench] failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    await shutdown(1);
  },
);
