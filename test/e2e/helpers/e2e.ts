// Shared helpers of the end-to-end tests: real llama-servers behind a real
// gateway, and small readers for what the servers and the gateway expose
// (/slots, /metrics, /admin/backends, SSE bodies).

import { setTimeout as sleep } from 'node:timers/promises';

import { startTestGateway, type TestGateway } from '../../helpers/gateway.ts';
import { startLlamaServer, type LlamaServer, type LlamaServerOptions } from './llama-server.ts';

/** The public model name the e2e gateways serve (the servers' alias is different on purpose). */
export const PUBLIC_MODEL = 'tiny-chat';
export const PUBLIC_ALIAS = 'tiny';
export const SERVER_ALIAS = 'tiny-llama';

/** Things to stop in afterAll, newest first; runs them all, then throws the first failure. */
export class Cleanup {
  private readonly tasks: Array<() => Promise<unknown>> = [];
  add(task: () => Promise<unknown>): void {
    this.tasks.push(task);
  }
  async run(): Promise<void> {
    let failure: unknown;
    while (this.tasks.length > 0) {
      try {
        await this.tasks.pop()?.();
      } catch (error) {
        failure ??= error;
      }
    }
    if (failure !== undefined) throw failure;
  }
}

/** Starts `count` llama-servers one after the other (parallel starts only fight over 2 cores). */
export async function startServers(count: number, options: LlamaServerOptions, cleanup: Cleanup): Promise<LlamaServer[]> {
  const servers: LlamaServer[] = [];
  for (let index = 0; index < count; index++) {
    const server = await startLlamaServer({ alias: SERVER_ALIAS, ...options });
    cleanup.add(() => server.close());
    servers.push(server);
  }
  return servers;
}

/** A backend entry for a real llama-server. */
export function llamaBackend(id: string, server: LlamaServer, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id, kind: 'llamacpp', url: server.url, ...extra };
}

/** A gateway serving PUBLIC_MODEL (and PUBLIC_ALIAS) from the given servers, named by their ids. */
export async function startGatewayFor(
  servers: Record<string, LlamaServer>,
  cleanup: Cleanup,
  options: { backend?: Record<string, unknown>; model?: Record<string, unknown>; top?: Record<string, unknown> } = {},
): Promise<TestGateway> {
  const gateway = await startTestGateway({
    backends: Object.entries(servers).map(([id, server]) => llamaBackend(id, server, options.backend)),
    models: [
      {
        name: PUBLIC_MODEL,
        aliases: [PUBLIC_ALIAS],
        targets: Object.entries(servers).map(([id, server]) => ({ backend: id, model: server.alias })),
        ...options.model,
      },
    ],
    // A short grace: a request stuck in the gateway must not stall afterAll for 30 s;
    // expectDrained() below reports it instead.
    server: { shutdownGraceMs: 3_000 },
    ...options.top,
  });
  cleanup.add(async () => {
    try {
      await expectDrained(gateway);
    } finally {
      await gateway.close();
    }
  });
  return gateway;
}

/** Waits (≤ 5 s) until the gateway has nothing in flight or queued on any backend. */
export async function expectDrained(gateway: TestGateway): Promise<void> {
  let last = '';
  try {
    await poll(
      async () => {
        const admin = await adminBackends(gateway);
        last = Object.values(admin)
          .map((backend) => `${backend.id}: inflight ${backend.load.inflight}, queued ${backend.load.gatewayQueue}`)
          .join('; ');
        return Object.values(admin).every((backend) => backend.load.inflight === 0 && backend.load.gatewayQueue === 0);
      },
      'the gateway to have nothing in flight',
      5_000,
      50,
    );
  } catch {
    throw new Error(`requests left in flight in the gateway after the tests: ${last}`);
  }
}

/**
 * A short pause between requests that must not race llama-server's connection close: it drops a
 * keep-alive connection ~10 ms after every streamed answer (see the conformance check), and the
 * gateway may reuse that connection in the meantime (openai-api.test.ts, "back-to-back requests").
 * Tests about something else wait this long so they are not failed by that bug.
 */
export const afterStreamCloseMs = 40;

/** Polls `check` every `intervalMs` until it is true; throws naming `what` after `timeoutMs`. */
export async function poll(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000, intervalMs = 25): Promise<number> {
  const started = performance.now();
  const deadline = started + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await check()) return performance.now() - started;
    } catch (error) {
      lastError = error;
    }
    if (performance.now() > deadline) {
      const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(intervalMs);
  }
}

export interface SlotInfo {
  id: number;
  n_ctx: number;
  is_processing: boolean;
  id_task: number;
  next_token?: Array<{ n_decoded: number; n_remain: number }>;
}

/** The server's own view of its slots (`GET /slots`). */
export async function slots(server: LlamaServer): Promise<SlotInfo[]> {
  const response = await fetch(`${server.url}/slots`, { signal: AbortSignal.timeout(5_000) });
  if (response.status !== 200) throw new Error(`/slots answered ${response.status}`);
  return (await response.json()) as SlotInfo[];
}

/** Slots that are generating right now. */
export async function busySlots(server: LlamaServer): Promise<number> {
  return (await slots(server)).filter((slot) => slot.is_processing).length;
}

/** Samples of a Prometheus text exposition: `name{labels}` → value (labels as written). */
export function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([^\s{]+(?:\{[^}]*\})?)\s+(\S+)/.exec(line);
    if (match) samples.set(match[1] as string, Number(match[2]));
  }
  return samples;
}

/** Reads `/metrics` of a server or a gateway. */
export async function metrics(baseUrl: string): Promise<Map<string, number>> {
  const response = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(5_000) });
  if (response.status !== 200) throw new Error(`${baseUrl}/metrics answered ${response.status}`);
  return parsePrometheus(await response.text());
}

/** One sample whose name matches and whose labels include every given `key="value"`. */
export function sample(samples: Map<string, number>, name: string, labels: Record<string, string> = {}): number | undefined {
  let total: number | undefined;
  for (const [key, value] of samples) {
    const brace = key.indexOf('{');
    const bare = brace < 0 ? key : key.slice(0, brace);
    if (bare !== name) continue;
    const labelText = brace < 0 ? '' : key.slice(brace);
    if (Object.entries(labels).every(([label, want]) => labelText.includes(`${label}="${want}"`))) total = (total ?? 0) + value;
  }
  return total;
}

export interface AdminBackend {
  id: string;
  kind: string;
  health: string;
  lastError: string | null;
  circuit: { state: string };
  load: {
    inflight: number;
    maxConcurrency: number;
    gatewayQueue: number;
    runtimeQueued: number | null;
    runtimeRunning: number | null;
    slots: number | null;
    scrapeAgeMs: number | null;
    scrapeError: string | null;
  };
  models: Record<string, { contextLength: number | null }>;
}

/** `GET /admin/backends`, keyed by backend id. */
export async function adminBackends(gateway: TestGateway): Promise<Record<string, AdminBackend>> {
  const token = gateway.config.admin.token;
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
  const response = await fetch(`${gateway.url}/admin/backends`, { headers, signal: AbortSignal.timeout(5_000) });
  const body = (await response.json()) as { backends: AdminBackend[] };
  return Object.fromEntries(body.backends.map((backend) => [backend.id, backend]));
}

export { readUntil, sseEvents } from '../../helpers/sse.ts';

/** POSTs JSON (or a raw string) to `url + path`. */
export function postJson(url: string, path: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('content-type', 'application/json');
  return fetch(url + path, { ...init, method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

/** llama.cpp's `timings` object. */
export interface Timings {
  cache_n: number;
  prompt_n: number;
  predicted_n: number;
  prompt_ms: number;
  predicted_ms: number;
}

export interface UsageShape {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens?: number };
}
