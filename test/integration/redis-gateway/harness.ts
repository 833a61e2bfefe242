/**
 * Shared pieces of the gateway-on-Redis integration tests: config builders,
 * raw HTTP calls, Prometheus text reading, raw Redis dumps, and a gateway
 * started as a separate `node src/main.ts serve` process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type OpenAI from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';
import type { Simulator } from '../../../src/sim/simulator.ts';
import type { TestGateway } from '../../helpers/gateway.ts';
export { metricValue } from '../../helpers/metrics-text.ts';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * The `redis` config section for a test Redis. The command timeout is longer than the 300 ms default: on a
 * loaded two-core machine a healthy Redis can take that long to answer, and a timed-out command is (by design)
 * a Redis failure, which would turn limit and cache assertions flaky. The outage tests set it back to 300 ms.
 */
export function redisSection(url: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { url, commandTimeoutMs: 2_000, connectTimeoutMs: 1_000, startupWaitMs: 5_000, ...extra };
}

/**
 * The `cache` section the tests use: a longer cache timeout than the default 100 ms, so a CPU-starved test
 * machine (two cores, other suites running) does not turn a slow-but-working Redis read into a miss
 * (by design a slow cache is skipped, which would make HIT assertions flaky).
 */
export const patientCache = { timeoutMs: 2_000 };

/** A backend entry for a simulator, without background probes getting in the way. */
export function simBackend(id: string, simulator: Simulator, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id, kind: simulator.options.flavor, url: simulator.url, ...extra };
}

/** A model served by one simulator. */
export function simModel(name: string, backend: string, simulator: Simulator, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, targets: [{ backend, model: simulator.options.model }], ...extra };
}

/** A chat body; `temperature: 0` (cacheable) unless overridden. */
export function chatBody(content: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: 'chat', messages: [{ role: 'user', content }], temperature: 0, max_tokens: 8, ...extra };
}

/** What a raw call returns. */
export interface RawAnswer {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

/** POSTs a JSON body to `${base}${path}` with optional bearer key and headers. */
export async function postJson(base: string, path: string, body: unknown, options: { key?: string; headers?: Record<string, string> } = {}): Promise<RawAnswer> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(options.headers ?? {}) };
  if (options.key !== undefined) headers.authorization = `Bearer ${options.key}`;
  return answerOf(await fetch(`${base}${path}`, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers }));
}

/** GETs `${base}${path}` and parses JSON when it is JSON. */
export async function getJson(base: string, path: string, headers: Record<string, string> = {}): Promise<RawAnswer> {
  return answerOf(await fetch(`${base}${path}`, { headers }));
}

/** Reads a response, parsing JSON when it is JSON. */
async function answerOf(response: Response): Promise<RawAnswer> {
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** The assistant text of a chat answer. */
export function contentOf(answer: RawAnswer): string {
  return answer.json?.choices?.[0]?.message?.content ?? '';
}

/** Every key in Redis with its raw value bytes (strings; hashes, lists and sets flattened). */
export async function dumpRedis(url: string): Promise<Array<{ key: string; value: Buffer }>> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  try {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await client.scan(cursor, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    const out: Array<{ key: string; value: Buffer }> = [];
    for (const key of keys) {
      const type = await client.type(key);
      let value: Buffer;
      if (type === 'string') value = (await client.getBuffer(key)) ?? Buffer.alloc(0);
      else if (type === 'hash') value = Buffer.concat(Object.entries(await client.hgetallBuffer(key)).flatMap(([field, item]) => [Buffer.from(field), item]));
      else if (type === 'list') value = Buffer.concat(await client.lrangeBuffer(key, 0, -1));
      else if (type === 'set') value = Buffer.concat(await client.smembersBuffer(key));
      else if (type === 'zset') value = Buffer.concat(await client.zrangeBuffer(key, '0', '-1'));
      else value = Buffer.alloc(0);
      out.push({ key, value });
    }
    return out;
  } finally {
    client.disconnect();
  }
}

/** A gateway running as its own process (`node src/main.ts serve --config FILE`). */
export interface GatewayProcess {
  url: string;
  baseURL: string;
  logs: string[];
  child: ChildProcess;
  /** The config file it serves (a test may rewrite it and reload). */
  file: string;
  /** SIGTERM, wait for the exit, remove the temp config. */
  close(): Promise<void>;
}

/** How to start the process: extra Node flags (before the script) and environment. */
export interface ProcessOptions {
  nodeArgs?: string[];
  env?: Record<string, string>;
}

/** Writes the config to a temp file and starts `switchyard serve` on it; resolves once it listens. */
export async function startGatewayProcess(config: Record<string, unknown>, timeoutMs = 15_000, options: ProcessOptions = {}): Promise<GatewayProcess> {
  const directory = await mkdtemp(join(tmpdir(), 'swy-gw-'));
  const file = join(directory, 'switchyard.yaml');
  // JSON is YAML: the loader reads it as is.
  await writeFile(file, JSON.stringify({ server: { host: '127.0.0.1', port: 0, shutdownGraceMs: 2_000 }, ...config }, null, 2));
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), 'src/main.ts', 'serve', '--config', file], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_NO_WARNINGS: '1', ...(options.env ?? {}) },
  });
  const logs: string[] = [];
  let buffered = '';
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway process did not listen within ${timeoutMs} ms:\n${logs.join('\n')}\n${stderr}`)), timeoutMs);
    child.stdout?.on('data', (data: Buffer) => {
      buffered += data.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        if (!line) continue;
        logs.push(line);
        try {
          const parsed = JSON.parse(line) as { msg?: string; url?: string };
          if (parsed.msg === 'switchyard listening' && parsed.url) {
            clearTimeout(timer);
            resolve(parsed.url);
          }
        } catch {
          // not JSON
        }
      }
    });
    child.stderr?.on('data', (data: Buffer) => (stderr += data.toString('utf8')));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway process exited with ${code}:\n${logs.join('\n')}\n${stderr}`));
    });
  });
  return {
    url,
    baseURL: `${url}/v1`,
    logs,
    child,
    file,
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** When the current minute ends within `marginMs`, waits for the next one (token buckets are wall-clock minutes). */
export async function awayFromMinuteBoundary(marginMs = 5_000): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < marginMs) await new Promise((resolve) => setTimeout(resolve, left + 50));
}

type ClientOptions = NonNullable<ConstructorParameters<typeof OpenAI>[0]>;

/**
 * An SDK client on undici's own fetch and a private connection pool, for tests that abort requests: after an
 * abort, Node's bundled fetch opens a spare connection to the gateway that never sends a request. Such a
 * connection used to hold the gateway's graceful shutdown for its whole grace period (shutdown-idle-connection
 * .test.ts guards the fix); a private pool, destroyed by `close()`, keeps these tests independent of it.
 */
export function abortingClient(gateway: TestGateway, options: Partial<ClientOptions> = {}): { client: OpenAI; close(): Promise<void> } {
  const agent = new Agent();
  const client = gateway.client({
    ...options,
    fetch: undiciFetch as unknown as ClientOptions['fetch'],
    fetchOptions: { dispatcher: agent } as unknown as ClientOptions['fetchOptions'],
  });
  return { client, close: () => agent.destroy() };
}
