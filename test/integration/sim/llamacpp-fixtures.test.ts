// Replays the requests recorded against a real llama-server (test/fixtures/llamacpp)
// on the llama.cpp flavour and compares the answers' shapes: statuses, key order and
// value types, key headers, stream chunk sequences, and the metric families.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { SimulatorOptions } from '../../../src/sim/simulator.ts';
import { sseEvents, useSimulator } from './sim-helpers.ts';

const FIXTURES = new URL('../../fixtures/llamacpp/', import.meta.url);

interface Fixture {
  request: { method: string; path: string; json?: unknown; raw?: string; headers?: Record<string, string> };
  status: number;
  headers: Record<string, string>;
  body?: unknown;
  bodyText?: string;
}

function load(name: string): Fixture {
  return JSON.parse(readFileSync(new URL(name + '.json', FIXTURES), 'utf8')) as Fixture;
}

/** Structure without values: ordered keys, and the type of every leaf. */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.length === 0 ? [] : [shape(value[0])];
  if (value === null) return null;
  if (typeof value === 'object') return Object.entries(value).map(([key, item]) => [key, shape(item)]);
  return typeof value;
}

// The recorded server: alias tiny-llama, 4 slots sharing 8192 tokens (2048 per slot).
const RECORDED: Omit<SimulatorOptions, 'flavor'> = { model: 'tiny-llama', maxConcurrency: 4, maxModelLen: 2048 };

async function replay(name: string, extra: Partial<SimulatorOptions> = {}): Promise<{ fixture: Fixture; response: Response; text: string }> {
  const fixture = load(name);
  const sim = await useSimulator({ flavor: 'llamacpp', ...RECORDED, ...extra });
  let body = fixture.request.raw;
  if (fixture.request.json !== undefined) {
    const json = structuredClone(fixture.request.json) as Record<string, any>;
    // Long prompts are stored shortened ("hello hello … [18000 chars]"); expand them again.
    for (const message of json.messages ?? []) {
      const match = /… \[(\d+) chars\]$/.exec(message.content ?? '');
      if (match) message.content = 'hello '.repeat(Math.ceil(Number(match[1]) / 6)).slice(0, Number(match[1]));
    }
    body = JSON.stringify(json);
  }
  const headers: Record<string, string> = { ...fixture.request.headers };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(sim.url + fixture.request.path, { method: fixture.request.method, headers, body });
  return { fixture, response, text: await response.text() };
}

function expectHeaders(response: Response, fixture: Fixture): void {
  for (const name of ['content-type', 'server', 'access-control-allow-origin', 'connection']) {
    if (name === 'connection' && fixture.headers[name] === undefined) continue;
    expect(response.headers.get(name), name).toBe(fixture.headers[name] ?? null);
  }
}

describe('llama.cpp flavour against responses recorded from a real llama-server', () => {
  it.each([
    ['chat-completion'],
    ['completion'],
    ['error-context-exceeded'],
    ['error-missing-messages'],
    ['error-malformed-json'],
    ['error-404'],
    ['health'],
    ['models'],
    ['slots-idle'],
  ])('%s: same status, headers and body shape', async (name) => {
    const { fixture, response, text } = await replay(name);
    expect(response.status).toBe(fixture.status);
    expectHeaders(response, fixture);
    expect(shape(JSON.parse(text))).toEqual(shape(fixture.body));
  });

  it('error messages match word for word where they are deterministic', async () => {
    for (const name of ['error-malformed-json', 'error-missing-messages', 'error-404']) {
      const { fixture, text } = await replay(name);
      expect(JSON.parse(text)).toEqual(fixture.body);
    }
  });

  it.each([['chat-completion-stream'], ['chat-completion-stream-usage'], ['completion-stream']])(
    '%s: same chunk sequence and chunk shapes',
    async (name) => {
      const { fixture, response, text } = await replay(name);
      expect(response.status).toBe(200);
      expectHeaders(response, fixture);
      const recorded = sseEvents(fixture.bodyText ?? '');
      const simulated = sseEvents(text);
      expect(simulated.map(shape)).toEqual(recorded.map(shape));
    },
  );

  it.each([
    ['health-loading', { loadingMs: 10_000 }],
    ['metrics-disabled', { metrics: false }],
    ['auth-models-no-key', { apiKey: 'sk-test-123' }],
    ['auth-metrics-no-key', { apiKey: 'sk-test-123' }],
    ['auth-slots-no-key', { apiKey: 'sk-test-123' }],
    ['auth-health-no-key', { apiKey: 'sk-test-123' }],
    ['auth-models-x-api-key', { apiKey: 'sk-test-123' }],
  ] as const)('%s: same status and body', async (name, options) => {
    const { fixture, response, text } = await replay(name, options);
    expect(response.status).toBe(fixture.status);
    expectHeaders(response, fixture);
    if (fixture.status >= 400) expect(JSON.parse(text)).toEqual(fixture.body);
    else expect(shape(JSON.parse(text))).toEqual(shape(fixture.body));
  });

  it('exposes the same metric families, in the same order, with the same types and help', async () => {
    const sim = await useSimulator({ flavor: 'llamacpp', ...RECORDED });
    const simulated = (await (await fetch(sim.url + '/metrics')).text())
      .split('\n')
      .filter((line) => line.startsWith('#') && !line.includes('switchyard_sim_'));
    const recorded = readFileSync(new URL('metrics.txt', FIXTURES), 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('#'));
    expect(simulated).toEqual(recorded);
  });
});
