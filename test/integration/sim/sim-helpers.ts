// Shared helpers of the simulator integration tests: start/stop simulators, post
// JSON, split SSE bodies into events, and wait for a stats condition.

import { afterEach } from 'vitest';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../../src/sim/simulator.ts';

const running: Simulator[] = [];

/** Starts a simulator that is closed after the current test. */
export async function useSimulator(options: Partial<SimulatorOptions> & Pick<SimulatorOptions, 'flavor'>): Promise<Simulator> {
  const sim = await startSimulator({ model: 'sim-model', ...options });
  running.push(sim);
  return sim;
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((sim) => sim.close()));
});

export function postJson(sim: Simulator, path: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('content-type', 'application/json');
  return fetch(sim.url + path, { ...init, method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

export const chatBody = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  model: 'sim-model',
  messages: [{ role: 'user', content: 'Tell me about rivers.' }],
  max_tokens: 4,
  ...extra,
});

export { readUntil, sseEvents } from '../../helpers/sse.ts';

/**
 * llama-server (and the llama.cpp flavour, like it) closes a keep-alive connection a few ms after a
 * streamed answer unless the next request is already on it: wait that out before reusing the connection.
 */
export function afterStream(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 40));
}

/** Polls until `check` passes (it throws or returns false otherwise), for at most `timeoutMs`. */
export async function eventually(check: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Value of an unlabelled or labelled sample in Prometheus text (first match). */
export function metricValue(text: string, name: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    const key = line.slice(0, space);
    const bare = key.includes('{') ? key.slice(0, key.indexOf('{')) : key;
    if (bare === name) return Number(line.slice(space + 1));
  }
  return undefined;
}

export type ChunkChoice = {
  index: number;
  delta?: Record<string, unknown>;
  text?: string;
  finish_reason: string | null;
};
export type Chunk = { choices: ChunkChoice[]; usage?: Record<string, unknown>; timings?: Record<string, number>; model: string };
