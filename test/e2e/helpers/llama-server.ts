// Start and stop a real llama.cpp `llama-server` for end-to-end tests.
// The binary and the tiny model come from `npm run e2e:setup` (see
// test/e2e/setup/setup.ts and test/e2e/README.md).

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import { cacheDir, manifestPath, RECIPE_VERSION, type E2eManifest } from '../setup/config.ts';

export interface LlamaBuild {
  serverBin: string;
  modelPath: string;
  cacheDir: string;
  manifest: E2eManifest;
}

/** Read the setup manifest; throws a clear Error when the setup has not been run. */
export async function resolveLlamaBuild(): Promise<LlamaBuild> {
  const dir = cacheDir();
  const file = manifestPath(dir);
  const hint = 'run `npm run e2e:setup` first';
  if (!existsSync(file)) {
    throw new Error(`${hint}: no llama.cpp build found (${file} does not exist)`);
  }
  let m: E2eManifest;
  try {
    m = JSON.parse(readFileSync(file, 'utf8')) as E2eManifest;
  } catch (err) {
    throw new Error(`${hint}: ${file} is unreadable (${(err as Error).message})`);
  }
  if (m.recipeVersion !== RECIPE_VERSION) {
    throw new Error(`${hint}: ${file} is for recipe ${m.recipeVersion}, this checkout needs ${RECIPE_VERSION}`);
  }
  for (const p of [m.serverBin, m.modelPath]) {
    if (typeof p !== 'string' || !existsSync(p)) throw new Error(`${hint}: ${p} is missing (listed in ${file})`);
  }
  return { serverBin: m.serverBin, modelPath: m.modelPath, cacheDir: dir, manifest: m };
}

export interface LlamaServerOptions {
  /** Parallel slots (`-np`). Default 4. */
  slots?: number;
  /** Context per slot; `-c` is slots * ctx. Default 2048. */
  ctx?: number;
  /** Model alias (`-a`), the id in /v1/models and the `model` of every response. Default "tiny-llama". */
  alias?: string;
  /** Extra command-line arguments, appended last (they win over ours). */
  extraArgs?: string[];
  /** `--api-key`. */
  apiKey?: string;
  /** CPU threads for generation (`-t`). Default 1: the tiny model needs no more, and the machine has 2 cores. */
  threads?: number;
  /** How long to wait for /health to answer 200. Default 60 s. */
  startTimeoutMs?: number;
  /** Fixed port instead of a free one picked at random. */
  port?: number;
  /** False: started as llama-server starts by default, without `--metrics` (and without naming `--slots`). Default true. */
  metrics?: boolean;
}

export interface LlamaServer {
  /** Base URL without a trailing slash, e.g. http://127.0.0.1:40123 */
  url: string;
  port: number;
  process: ChildProcess;
  alias: string;
  /** Slots and per-slot context actually requested. */
  slots: number;
  ctx: number;
  /** Full command line used. */
  args: string[];
  /** The last ~64 kB of the server's stdout+stderr. */
  logs(): string;
  /** SIGTERM, then SIGKILL after 5 s; resolves when the process is gone. Safe to call twice. */
  close(): Promise<void>;
  /** Send a signal right away (default SIGKILL), e.g. to simulate a crashed backend. */
  kill(signal?: NodeJS.Signals): void;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const LOG_KEEP = 64_000;

/** Start llama-server with the tiny model and wait until /health is 200. */
export async function startLlamaServer(opts: LlamaServerOptions = {}): Promise<LlamaServer> {
  const attempts = opts.port === undefined ? 3 : 1;
  let lastErr: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      lastErr = err;
      // a port race (someone took the port between freePort() and bind) is worth a retry
      if (!(err instanceof Error && /bind|address already in use/i.test(err.message))) throw err;
    }
  }
  throw lastErr;
}

async function startOnce(opts: LlamaServerOptions): Promise<LlamaServer> {
  const build = await resolveLlamaBuild();
  const slots = opts.slots ?? 4;
  const ctx = opts.ctx ?? 2048;
  const alias = opts.alias ?? 'tiny-llama';
  const threads = opts.threads ?? 1;
  const port = opts.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;

  const args = [
    '-m',
    build.modelPath,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '-np',
    String(slots),
    '-c',
    String(slots * ctx),
    '-t',
    String(threads),
    ...(opts.metrics === false ? [] : ['--metrics', '--slots']),
    '-a',
    alias,
    // harmless with the patched model (its context_length is already 8192);
    // without it every slot would be capped at the converter's 128 tokens
    '--override-kv',
    'llama.context_length=int:8192',
    ...(opts.apiKey !== undefined ? ['--api-key', opts.apiKey] : []),
    ...(opts.extraArgs ?? []),
  ];

  // keep llama-server from picking up LLAMA_ARG_* settings from the environment
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('LLAMA_ARG_')) env[k] = v;

  const child = spawn(build.serverBin, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  const onData = (c: Buffer): void => {
    out = (out + c.toString('utf8')).slice(-LOG_KEEP);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);

  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    });
  });
  let spawnError: Error | null = null;
  child.once('error', (err) => {
    spawnError = err;
  });

  // never leave a llama-server behind when the test process exits
  const killOnExit = (): void => {
    if (exited === null) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const kill = (signal: NodeJS.Signals = 'SIGKILL'): void => {
    if (exited === null) child.kill(signal);
  };
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      process.removeListener('exit', killOnExit);
      if (exited !== null || spawnError !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exitPromise;
      clearTimeout(timer);
    })();
    return closing;
  };

  const tail = (): string => out.trim().split('\n').slice(-40).join('\n');
  const timeoutMs = opts.startTimeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  let lastStatus = 'no answer yet';
  for (;;) {
    if (spawnError !== null) {
      await close();
      throw new Error(`could not start ${build.serverBin}: ${(spawnError as Error).message}`);
    }
    if (exited !== null) {
      const e = exited as { code: number | null; signal: NodeJS.Signals | null };
      process.removeListener('exit', killOnExit);
      throw new Error(`llama-server exited (${e.code ?? e.signal}) before it was ready\n` + `command: ${build.serverBin} ${args.join(' ')}\n--- output ---\n${tail()}`);
    }
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
      const body = await res.text();
      if (res.status === 200) break;
      lastStatus = `${res.status} ${body.slice(0, 200)}`;
    } catch (err) {
      lastStatus = (err as Error).message;
    }
    if (Date.now() > deadline) {
      await close();
      throw new Error(
        `llama-server did not become healthy within ${timeoutMs} ms (last /health: ${lastStatus})\n` + `command: ${build.serverBin} ${args.join(' ')}\n--- output ---\n${tail()}`,
      );
    }
    await sleep(100);
  }

  return { url, port, process: child, alias, slots, ctx, args: [build.serverBin, ...args], logs: () => out, close, kill };
}
