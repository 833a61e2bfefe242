// Replaying requests recorded against a real llama-server (test/fixtures/llamacpp)
// on a simulator, and comparing shapes: ordered keys and leaf types, headers, SSE
// event sequences (plain `data:` streams and named `event:` streams).

import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import type { SimulatorOptions } from '../../../src/sim/simulator.ts';
import { useSimulator } from './sim-helpers.ts';

export const FIXTURES = new URL('../../fixtures/llamacpp/', import.meta.url);

export interface Fixture {
  request: { method: string; path: string; json?: unknown; raw?: string; headers?: Record<string, string> };
  status: number;
  headers: Record<string, string>;
  body?: unknown;
  bodyText?: string;
}

export function loadFixture(name: string): Fixture {
  return JSON.parse(readFileSync(new URL(`${name}.json`, FIXTURES), 'utf8')) as Fixture;
}

/** Structure without values: ordered keys, and the type of every leaf. */
export function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.length === 0 ? [] : [shape(value[0])];
  if (value === null) return null;
  if (typeof value === 'object') return Object.entries(value).map(([key, item]) => [key, shape(item)]);
  return typeof value;
}

// The recorded server: alias tiny-llama, 4 slots sharing 8192 tokens (2048 per slot).
export const RECORDED: Omit<SimulatorOptions, 'flavor'> = { model: 'tiny-llama', maxConcurrency: 4, maxModelLen: 2048 };

const SHORTENED = /… \[(\d+) chars\]$/;

/** Long prompts are stored shortened ("hello hello … [18000 chars]"); grow them back to their length. */
function expand(text: string): string {
  const match = SHORTENED.exec(text);
  if (!match) return text;
  const length = Number(match[1]);
  return 'hello '.repeat(Math.ceil(length / 6)).slice(0, length);
}

function expandRequest(json: unknown): unknown {
  const body = structuredClone(json) as Record<string, any>;
  for (const message of body.messages ?? []) {
    if (typeof message.content === 'string') message.content = expand(message.content);
  }
  if (typeof body.input === 'string') body.input = expand(body.input);
  return body;
}

/** Sends a fixture's request to a fresh llama.cpp simulator configured like the recorded server. */
export async function replay(name: string, extra: Partial<SimulatorOptions> = {}): Promise<{ fixture: Fixture; response: Response; text: string }> {
  const fixture = loadFixture(name);
  const sim = await useSimulator({ flavor: 'llamacpp', ...RECORDED, ...extra });
  let body = fixture.request.raw;
  if (fixture.request.json !== undefined) body = JSON.stringify(expandRequest(fixture.request.json));
  const headers: Record<string, string> = { ...fixture.request.headers };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(sim.url + fixture.request.path, { method: fixture.request.method, headers, body });
  return { fixture, response, text: await response.text() };
}

export function expectHeaders(response: Response, fixture: Fixture): void {
  for (const name of ['content-type', 'server', 'access-control-allow-origin', 'connection']) {
    if (name === 'connection' && fixture.headers[name] === undefined) continue;
    expect(response.headers.get(name), name).toBe(fixture.headers[name] ?? null);
  }
}

export interface NamedEvent {
  event: string | undefined;
  data: unknown;
}

/** The events of an SSE body with their `event:` names (undefined when a block has none). */
export function namedEvents(text: string): NamedEvent[] {
  const events: NamedEvent[] = [];
  for (const block of text.split('\n\n')) {
    let event: string | undefined;
    let data: string | undefined;
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data = line.slice(6);
    }
    if (data !== undefined) events.push({ event, data: data === '[DONE]' ? data : JSON.parse(data) });
  }
  return events;
}
