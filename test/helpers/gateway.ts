/**
 * Test harness: simulators and a real listening gateway on ephemeral ports,
 * with captured log lines. Every start has a matching close.
 */
import { Writable } from 'node:stream';
import { afterEach } from 'vitest';
import OpenAI from 'openai';
import { Registry as PromRegistry } from 'prom-client';
import { validateConfig } from '../../src/config/load.ts';
import type { AppDependencies } from '../../src/app.ts';
import type { SwitchyardConfig } from '../../src/config/schema.ts';
import { createLogger } from '../../src/logging.ts';
import { startGateway, type RunningGateway } from '../../src/server.ts';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/sim/simulator.ts';

/** A gateway under test with its captured logs. */
export interface TestGateway extends RunningGateway {
  baseURL: string;
  logs: string[];
  config: SwitchyardConfig;
  client(options?: Partial<ConstructorParameters<typeof OpenAI>[0]>): OpenAI;
  close(): Promise<void>;
}

/** Starts a simulator on a free loopback port. */
export function startSim(options: Partial<SimulatorOptions> & Pick<SimulatorOptions, 'flavor'>): Promise<Simulator> {
  return startSimulator({ model: options.flavor === 'vllm' ? 'Qwen/Qwen3-8B' : 'qwen3-8b-q4', ...options });
}

/** Starts a gateway from a config object (defaults filled), on a free port; `deps` adds or overrides dependencies (a clock, say). */
export async function startTestGateway(raw: Record<string, unknown>, deps: Partial<AppDependencies> = {}): Promise<TestGateway> {
  const config = validateConfig({ logging: { level: 'info' }, ...raw }, 'test', {});
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      callback();
    },
  });
  const logger = createLogger(config, sink);
  const gateway = await startGateway(config, { port: 0, host: '127.0.0.1', logger, promRegistry: new PromRegistry(), ...deps });
  const baseURL = `${gateway.url}/v1`;
  return {
    ...gateway,
    baseURL,
    logs,
    config,
    client: (options = {}) => new OpenAI({ baseURL, apiKey: 'test-key', maxRetries: 0, timeout: 15_000, ...options }),
    close: () => gateway.shutdown('test done'),
  };
}

/** A backend entry for a simulator. */
export function backendFor(id: string, simulator: Simulator, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id, kind: simulator.options.flavor, url: simulator.url, ...extra };
}

/** Polls until `check` is true or the time runs out. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 3_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Raw POST helper returning status, headers and parsed JSON (or text). */
export async function post(url: string, body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }) {
  const response = await fetch(url, { method: 'POST', body, headers });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json: json as { error: { message: string; type: string; param: string | null; code: string | null } } };
}

/**
 * Simulators and gateways that close after each test of the calling file
 * (registers a vitest afterEach).
 */
export function closedAfterEach(): {
  sim(options: Parameters<typeof startSim>[0]): Promise<Simulator>;
  gateway(raw: Record<string, unknown>, deps?: Partial<AppDependencies>): Promise<TestGateway>;
} {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()?.();
  });
  return {
    async sim(options) {
      const simulator = await startSim(options);
      cleanups.push(() => simulator.close());
      return simulator;
    },
    async gateway(raw, deps) {
      const gateway = await startTestGateway(raw, deps);
      cleanups.push(() => gateway.close());
      return gateway;
    },
  };
}
