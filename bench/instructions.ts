/**
 * `npm run bench:instructions`: the gateway's work per request counted in CPU
 * instructions by valgrind's callgrind, which counts the same for the same code
 * and load whatever else the machine is doing — where `npm run bench`'s CPU time
 * per request moves 10–20% between repetitions on a shared machine. For "is this
 * change slower?" questions: compare two checkouts in one run.
 *
 *   npm run bench:instructions -- [--gateway-root DIR] [--baseline-root DIR] [--requests 3000] [--warmup 12000]
 *                                 [--reps 3] [--concurrency 16] [--stream] [--out DIR] [--keep-dumps DIR]
 *
 * Per repetition and checkout: the simulator (native speed) and the gateway under `valgrind --tool=callgrind`
 * (about 50× slower, so the load generator is always ahead of it); `--warmup` requests, the counters zeroed
 * (`callgrind_control -z`), `--requests` requests, the counters dumped. Instructions per request = the dump's total
 * over the requests. Includes everything the process does in that window (V8's compiler and GC threads, log writes,
 * timers) except the backend's probes and scrapes, which are turned off (see the config below). Needs valgrind (Debian: `apt-get install -y valgrind`).
 * `--keep-dumps DIR` keeps the callgrind files for `callgrind_annotate` (V8's built-ins and C++ by name; JIT code shows as ???).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { freePort, type Service, startService, stopAll } from './processes.ts';

const benchDir = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = resolve(benchDir, '..');

const { values: flags } = parseArgs({
  options: {
    'gateway-root': { type: 'string' },
    'baseline-root': { type: 'string' },
    requests: { type: 'string', default: '3000' },
    warmup: { type: 'string', default: '12000' },
    reps: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '16' },
    stream: { type: 'boolean', default: false },
    out: { type: 'string' },
    'keep-dumps': { type: 'string' },
  },
});

function count(raw: string, name: string): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`--${name} needs a whole number >= 1, got "${raw}"`);
    process.exit(2);
  }
  return value;
}
const requests = count(flags.requests, 'requests');
const warmup = count(flags.warmup, 'warmup');
const reps = count(flags.reps, 'reps');
const concurrency = count(flags.concurrency, 'concurrency');
const stream = flags.stream;
const outDir = resolve(flags.out ?? join(benchDir, 'results'));
const roots: { name: string; root: string }[] = [{ name: 'switchyard', root: resolve(flags['gateway-root'] ?? repoRoot) }];
if (flags['baseline-root']) roots.push({ name: 'baseline', root: resolve(flags['baseline-root']) });

if (spawnSync('valgrind', ['--version']).status !== 0) {
  console.error('valgrind is missing (Debian: apt-get install -y valgrind)');
  process.exit(2);
}

const publicModel = 'bench-model';
const upstreamModel = 'sim-model';
const body = JSON.stringify({
  model: publicModel,
  messages: [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'Summarise the following in one sentence: the quick brown fox jumps over the lazy dog while the gateway relays tokens, and so on.' },
  ],
  max_tokens: stream ? 20 : 8,
  temperature: 0.7,
  ...(stream ? { stream: true } : {}),
});

const log = (line: string) => console.error(`[instructions] ${line}`);
const git = (root: string) => spawnSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim() || '?';

/** `total` requests through `url`, `concurrency` at a time; every one must answer 200. */
async function load(url: string, total: number): Promise<void> {
  const pool = new Pool(url, { connections: concurrency, pipelining: 1 });
  let left = total;
  let failed = 0;
  const worker = async () => {
    while (left > 0) {
      left--;
      const response = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body });
      await response.body.text();
      if (response.statusCode !== 200) failed++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  await pool.close();
  if (failed > 0) throw new Error(`${failed} of ${total} requests failed`);
}

function callgrindControl(args: string[]): void {
  const result = spawnSync('callgrind_control', args, { encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0) throw new Error(`callgrind_control ${args.join(' ')}: ${result.stderr || result.stdout}`);
}

/**
 * The newest dump of `base`: callgrind writes base.N-TT per dump N and thread TT (--separate-threads); thread 01 is
 * the main thread (the event loop), the others V8's compiler and GC helpers and libuv's pool.
 */
function dumped(dir: string, base: string): { total: number; main: number; files: string[] } {
  const dumps = readdirSync(dir).flatMap((file) => {
    const match = file.startsWith(`${base}.`) ? /\.(\d+)-(\d+)$/.exec(file) : null;
    return match ? [{ file, dump: Number(match[1]), thread: Number(match[2]) }] : [];
  });
  const last = Math.max(...dumps.map((entry) => entry.dump));
  const files = dumps.filter((entry) => entry.dump === last);
  if (files.length === 0) throw new Error(`no callgrind dump ${base}.N-TT in ${dir}`);
  let total = 0;
  let main = 0;
  for (const { file, thread } of files) {
    const match = /^(?:summary|totals): (\d+)/m.exec(readFileSync(join(dir, file), 'utf8'));
    if (!match) throw new Error(`no total in ${file}`);
    total += Number(match[1]);
    if (thread === 1) main = Number(match[1]);
  }
  return { total, main, files: files.map((entry) => entry.file) };
}

async function measure(root: string, name: string, rep: number, upstream: string, tmp: string): Promise<{ total: number; main: number }> {
  const port = await freePort();
  const config = {
    server: { host: '127.0.0.1', port, shutdownGraceMs: 1000 },
    // Probes, scrapes and discovery off (one per hour): under valgrind a second of wall time holds ~50× fewer
    // requests, so periodic work would weigh ~50× more per request than in a real run (its cost is measured apart:
    // README → Performance, idle CPU).
    backends: [{ id: 'sim', kind: 'vllm', url: upstream, maxConcurrency: 1024, health: { intervalMs: 3_600_000 }, scrape: { intervalMs: 0 }, discoveryIntervalMs: 3_600_000 }],
    models: [{ name: publicModel, targets: [{ backend: 'sim', model: upstreamModel }] }],
    logging: { level: 'info' },
  };
  const file = join(tmp, `${name}.yaml`);
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  const base = `cg.${name}.${rep}`;
  const gateway: Service = await startService({
    name,
    script: join(root, 'src', 'main.ts'),
    args: ['serve', '--config', file],
    cpu: undefined,
    cwd: root,
    readyUrl: `http://127.0.0.1:${port}/readyz`,
    readyTimeoutMs: 180_000,
    // One thread: V8 compiles and collects on the main thread, in the same order every run, so the count repeats
    // (with background threads, when a compile or a GC task lands in the window varies by up to ±8%).
    nodeArgs: ['--single-threaded'],
    wrapper: ['valgrind', '--tool=callgrind', `--callgrind-out-file=${join(tmp, base)}`, '--separate-threads=yes', '--dump-instr=no', '--compress-strings=no'],
  });
  try {
    const url = `http://127.0.0.1:${port}`;
    await load(url, warmup);
    callgrindControl(['-z', String(gateway.pid)]);
    await load(url, requests);
    callgrindControl(['-d', String(gateway.pid)]);
    const { total, main, files } = dumped(tmp, base);
    if (flags['keep-dumps']) {
      mkdirSync(flags['keep-dumps'], { recursive: true });
      for (const file of files) copyFileSync(join(tmp, file), join(flags['keep-dumps'], file));
    }
    return { total: total / requests, main: main / requests };
  } finally {
    await gateway.stop();
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'switchyard-instructions-'));
  try {
    const simPort = await freePort();
    const upstream = `http://127.0.0.1:${simPort}`;
    await startService({
      name: 'simulator',
      script: join(benchDir, 'sim-child.ts'),
      args: ['--port', String(simPort), '--model', upstreamModel, '--max-concurrency', '1024'],
      cpu: undefined,
      cwd: repoRoot,
      readyUrl: `${upstream}/health`,
    });
    const results = new Map<string, { total: number; main: number }[]>(roots.map(({ name }) => [name, []]));
    const fmt = (value: number) => Math.round(value).toLocaleString('en');
    for (let rep = 1; rep <= reps; rep++) {
      for (const { name, root } of roots) {
        const perRequest = await measure(root, name, rep, upstream, tmp);
        results.get(name)?.push(perRequest);
        log(`rep ${rep} ${name} (${git(root)}): ${fmt(perRequest.total)} instructions per request, ${fmt(perRequest.main)} on the main thread`);
      }
    }
    const cell = (values: number[]) => `${fmt(median(values))} (${fmt(Math.min(...values))}…${fmt(Math.max(...values))})`;
    const lines = [
      `# Instructions per request (callgrind), ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
      '',
      `${stream ? 'Streaming (20 tokens)' : 'Non-streaming (8 tokens)'} chat completions, ${concurrency} in flight, ${warmup} warm-up requests then ${requests} counted, ${reps} repetition(s); one vllm-flavoured simulator backend, logging info, probes and scrapes off. Median (min…max) over repetitions. "Main thread" is the event loop; "all threads" adds V8's compiler and GC helpers.`,
      '',
      '| target | commit | all threads | main thread |',
      '| --- | --- | --- | --- |',
      ...roots.map(({ name, root }) => {
        const values = results.get(name) ?? [];
        return `| ${name} | ${git(root)} | ${cell(values.map((value) => value.total))} | ${cell(values.map((value) => value.main))} |`;
      }),
    ];
    if (roots.length === 2) {
      const mine = results.get('switchyard') ?? [];
      const theirs = results.get('baseline') ?? [];
      const ratios = (pick: (value: { total: number; main: number }) => number) =>
        mine.map((value, index) => pick(value) / pick(theirs[index] ?? { total: Number.NaN, main: Number.NaN }));
      for (const [label, values] of [
        ['all threads', ratios((value) => value.total)],
        ['main thread', ratios((value) => value.main)],
      ] as const) {
        lines.push('', `switchyard / baseline, ${label}, paired by repetition: ${median(values).toFixed(3)}× (${values.map((ratio) => ratio.toFixed(3)).join(', ')})`);
      }
    }
    const markdown = lines.join('\n');
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, 'instructions-latest.md'), `${markdown}\n`);
    console.log(markdown);
  } finally {
    await stopAll();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  async (error: unknown) => {
    console.error(`[instructions] failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    await stopAll().catch(() => undefined);
    process.exit(1);
  },
);
