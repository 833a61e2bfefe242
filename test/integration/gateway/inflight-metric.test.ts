/**
 * `switchyard_inflight_requests`, the load the Kubernetes HPA scales on: API
 * requests this process has in progress, from arrival to the end of the
 * answer. Streams count while they stream, the /metrics and health requests
 * never count, and the gauge is back at 0 when the answers are done (also
 * when a client leaves mid-stream).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { backendFor, startSim, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.ts';
import { metricValue } from '../../helpers/metrics-text.ts';

let sim: Simulator;
let gateway: TestGateway;

beforeAll(async () => {
  // Slow streams: 20 tokens at 20/s, about a second each.
  sim = await startSim({ flavor: 'vllm', ttftMs: 50, tokensPerSecond: 20 });
  gateway = await startTestGateway({ backends: [backendFor('sim', sim)], models: [{ name: 'chat', targets: [{ backend: 'sim', model: sim.options.model }] }] });
});
afterAll(async () => {
  await gateway?.close();
  await sim?.close();
});

const inflight = async () => metricValue(await (await fetch(`${gateway.url}/metrics`)).text(), 'switchyard_inflight_requests');

describe('switchyard_inflight_requests', () => {
  it('counts API requests while they run, streams included, and returns to 0', async () => {
    expect(await inflight()).toBe(0);
    await fetch(`${gateway.url}/healthz`);
    const leaving = new AbortController();
    const streams = Array.from({ length: 3 }, (_, index) =>
      fetch(`${gateway.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: `stream ${index}` }], max_tokens: 20, stream: true }),
        ...(index === 0 ? { signal: leaving.signal } : {}),
      }).then((response) => response.text()),
    );
    await waitFor(async () => (await inflight()) === 3, 5_000, 'three requests in progress');
    leaving.abort();
    await Promise.allSettled(streams);
    await waitFor(async () => (await inflight()) === 0, 5_000, 'the gauge back at 0');
  });
});
