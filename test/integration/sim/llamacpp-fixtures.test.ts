// Replays the requests recorded against a real llama-server (test/fixtures/llamacpp)
// on the llama.cpp flavour and compares the answers' shapes: statuses, key order and
// value types, key headers, stream chunk sequences, and the metric families.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { expectHeaders, FIXTURES, RECORDED, replay, shape } from './fixture-replay.ts';
import { sseEvents, useSimulator } from './sim-helpers.ts';

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

  it.each([['chat-completion-stream'], ['chat-completion-stream-usage'], ['completion-stream']])('%s: same chunk sequence and chunk shapes', async (name) => {
    const { fixture, response, text } = await replay(name);
    expect(response.status).toBe(200);
    expectHeaders(response, fixture);
    const recorded = sseEvents(fixture.bodyText ?? '');
    const simulated = sseEvents(text);
    expect(simulated.map(shape)).toEqual(recorded.map(shape));
  });

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
    const simulated = (await (await fetch(`${sim.url}/metrics`)).text()).split('\n').filter((line) => line.startsWith('#') && !line.includes('switchyard_sim_'));
    const recorded = readFileSync(new URL('metrics.txt', FIXTURES), 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('#'));
    expect(simulated).toEqual(recorded);
  });
});
