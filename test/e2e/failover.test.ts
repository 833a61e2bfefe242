/**
 * One of two real llama-servers is killed (SIGKILL) in the middle of a run of
 * many requests: every non-streaming client still gets its answer (the
 * gateway fails over before anything reached them), a stream that was already
 * relaying from the dead server ends with an OpenAI-shaped error event (never
 * a clean-looking truncation), and the dead backend shows as down.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type OpenAI from 'openai';

import type { TestGateway } from '../helpers/gateway.ts';
import {
  adminBackends,
  afterStreamCloseMs,
  busySlots,
  Cleanup,
  metrics,
  poll,
  postJson,
  PUBLIC_MODEL,
  readUntil,
  sample,
  sseEvents,
  startGatewayFor,
  startServers,
} from './helpers/e2e.ts';
import type { LlamaServer } from './helpers/llama-server.ts';

const SLOTS = 2;
const cleanup = new Cleanup();
let a: LlamaServer;
let b: LlamaServer;
let gateway: TestGateway;
let client: OpenAI;

beforeAll(async () => {
  [a, b] = (await startServers(2, { slots: SLOTS, ctx: 4096 }, cleanup)) as [LlamaServer, LlamaServer];
  gateway = await startGatewayFor({ 'llama-a': a, 'llama-b': b }, cleanup, {
    backend: { maxConcurrency: SLOTS, health: { intervalMs: 500 } },
  });
  // no SDK retries: every error the gateway lets through must show
  client = gateway.client({ timeout: 60_000, maxRetries: 0 });
});

afterAll(() => cleanup.run());

interface Outcome {
  ok: boolean;
  backend: string | null;
  attempts: number;
  completionTokens: number | undefined;
  error?: string;
  finishedAt: number;
}

describe('a backend killed mid-run', () => {
  it('non-streaming clients see no error; a stream already relaying from it ends with an error event; the backend shows down', async () => {
    const TOTAL = 36;
    const WORKERS = 6;
    const MAX_TOKENS = 120;

    // Two long streams first: least-loaded puts one on each server.
    const streams = [];
    for (let index = 0; index < 2; index++) {
      const controller = new AbortController();
      const response = await postJson(
        gateway.baseURL,
        '/chat/completions',
        { model: PUBLIC_MODEL, messages: [{ role: 'user', content: `long stream ${index}` }], max_tokens: 3000, stream: true },
        { signal: controller.signal },
      );
      const head = await readUntil(response, (text) => text.includes('"content":"'));
      streams.push({ controller, response, head, backend: response.headers.get('x-switchyard-backend') });
    }
    expect(streams.map((stream) => stream.backend).sort()).toEqual(['llama-a', 'llama-b']);
    const onB = streams.find((stream) => stream.backend === 'llama-b')!;
    const onA = streams.find((stream) => stream.backend === 'llama-a')!;
    // read the rest of the stream on b to the end, whatever the end is
    const restOfB = (async () => {
      const reader = onB.response.body!.getReader();
      const decoder = new TextDecoder();
      let text = onB.head;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return text;
        text += decoder.decode(value, { stream: true });
      }
    })();

    // Many non-streaming requests through the official SDK, WORKERS at a time.
    let next = 0;
    let killedAt = Number.POSITIVE_INFINITY;
    const outcomes: Outcome[] = [];
    const worker = async () => {
      while (next < TOTAL) {
        const index = next++;
        try {
          const { data, response } = await client.chat.completions
            .create({ model: PUBLIC_MODEL, messages: [{ role: 'user', content: `request ${index}` }], max_tokens: MAX_TOKENS })
            .withResponse();
          outcomes.push({
            ok: true,
            backend: response.headers.get('x-switchyard-backend'),
            attempts: Number(response.headers.get('x-switchyard-attempts')),
            completionTokens: data.usage?.completion_tokens,
            finishedAt: performance.now(),
          });
        } catch (error) {
          outcomes.push({ ok: false, backend: null, attempts: 0, completionTokens: undefined, error: String(error), finishedAt: performance.now() });
        }
      }
    };
    const run = Promise.all(Array.from({ length: WORKERS }, worker));

    // Kill b once it has answered some and is busy with more of them (besides the long stream).
    await poll(
      async () => outcomes.filter((outcome) => outcome.backend === 'llama-b').length >= 3 && (await busySlots(b)) === SLOTS,
      'llama-b to have answered 3 requests and be busy',
      30_000,
      10,
    );
    expect(next).toBeLessThan(TOTAL); // plenty still to come
    const inflightOnB = (await adminBackends(gateway))['llama-b']?.load.inflight ?? 0;
    b.kill('SIGKILL');
    killedAt = performance.now();
    await run;

    // zero client-visible errors for requests that had not started streaming
    expect(outcomes.filter((outcome) => !outcome.ok).map((outcome) => outcome.error)).toEqual([]);
    expect(outcomes).toHaveLength(TOTAL);
    expect(outcomes.every((outcome) => outcome.completionTokens === MAX_TOKENS)).toBe(true);
    // the ones in flight on b when it died were retried on a
    expect(inflightOnB).toBeGreaterThanOrEqual(2); // the long stream and at least one non-streaming request
    const failedOver = outcomes.filter((outcome) => outcome.attempts >= 2 && outcome.finishedAt > killedAt);
    expect(failedOver.length).toBeGreaterThanOrEqual(1);
    expect(failedOver.every((outcome) => outcome.backend === 'llama-a')).toBe(true);
    // everything that finished after the kill came from a
    expect(outcomes.filter((outcome) => outcome.finishedAt > killedAt + 500).every((outcome) => outcome.backend === 'llama-a')).toBe(true);

    // the stream that was relaying from b: an error event in OpenAI shape instead of [DONE]
    const events = sseEvents(await restOfB);
    const last = events.at(-1) as { error?: { message: string; type: string; param: unknown; code: string } };
    expect(events).not.toContain('[DONE]');
    expect(last.error).toEqual({ message: expect.any(String), type: 'server_error', param: null, code: expect.stringMatching(/^upstream_/) });
    // the stream on a is unaffected: it still delivers tokens (or has finished cleanly)
    const moreOfA = await readUntil(onA.response, (text) => text.includes('"content":"') || text.includes('[DONE]'));
    expect(moreOfA).not.toContain('"error"');
    onA.controller.abort();

    // b shows down in /admin/backends and in the gateway metrics
    await poll(async () => (await adminBackends(gateway))['llama-b']?.health === 'down', 'llama-b to show down', 3_000, 50);
    const admin = await adminBackends(gateway);
    expect(admin['llama-a']?.health).toBe('up');
    expect(admin['llama-b']?.lastError).toMatch(/ECONNREFUSED|ECONNRESET|other side closed|socket|refused/i);
    const gw = await metrics(gateway.url);
    expect(sample(gw, 'switchyard_backend_up', { backend: 'llama-b' })).toBe(0);
    expect(sample(gw, 'switchyard_backend_up', { backend: 'llama-a' })).toBe(1);
    expect(sample(gw, 'switchyard_failovers_total', { backend: 'llama-b' }) ?? 0).toBeGreaterThanOrEqual(failedOver.length);
  });

  it('afterwards every request goes to the survivor, streamed or not, without failing over', async () => {
    for (const stream of [false, true]) {
      const response = await postJson(gateway.baseURL, '/chat/completions', { model: PUBLIC_MODEL, messages: [{ role: 'user', content: 'after' }], max_tokens: 5, stream });
      const detail = response.status === 200 ? '' : `${await response.clone().text()}\n${gateway.logs.slice(-6).join('\n')}`;
      expect(response.status, detail).toBe(200);
      expect(response.headers.get('x-switchyard-backend')).toBe('llama-a');
      expect(response.headers.get('x-switchyard-attempts')).toBe('1');
      await response.text();
      await sleep(afterStreamCloseMs);
    }
    await poll(async () => (await busySlots(a)) === 0, 'llama-a idle', 10_000);
  });
});
