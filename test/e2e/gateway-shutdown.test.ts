/**
 * Graceful shutdown in front of a real llama-server: a stream in flight is
 * relayed to its end, and the gateway then stops promptly — also when a
 * client holds a connection it has not sent a request on yet (HTTP client
 * pools such as undici's pre-open those under concurrency).
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { busySlots, Cleanup, llamaBackend, poll, postJson, PUBLIC_MODEL, readUntil, sseEvents } from './helpers/e2e.ts';
import { startLlamaServer, type LlamaServer } from './helpers/llama-server.ts';

const GRACE_MS = 5_000;
const cleanup = new Cleanup();
let server: LlamaServer;

beforeAll(async () => {
  server = await startLlamaServer({ slots: 2, ctx: 2048 });
  cleanup.add(() => server.close());
});

afterAll(() => cleanup.run());

async function gateway(): Promise<TestGateway> {
  const started = await startTestGateway({
    server: { shutdownGraceMs: GRACE_MS },
    backends: [llamaBackend('llama', server, { maxConcurrency: 2 })],
    models: [{ name: PUBLIC_MODEL, targets: [{ backend: 'llama', model: server.alias }] }],
  });
  cleanup.add(() => started.close()); // safe to call twice
  return started;
}

describe('graceful shutdown', () => {
  it('relays an in-flight stream from the real server to [DONE], then stops', async () => {
    const gw = await gateway();
    const response = await postJson(gw.baseURL, '/chat/completions', { model: PUBLIC_MODEL, messages: [{ role: 'user', content: 'drain me' }], max_tokens: 400, stream: true });
    const head = await readUntil(response, (text) => text.includes('"content":"'));
    const closing = gw.close();
    let closed = false;
    void closing.then(() => {
      closed = true;
    });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = head;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    const events = sseEvents(text);
    expect(events.at(-1)).toBe('[DONE]');
    expect(
      events.filter((event) => typeof event === 'object' && (event as { choices: Array<{ delta: { content?: string } }> }).choices[0]?.delta.content !== undefined).length,
    ).toBeGreaterThan(100);
    const endedAt = performance.now();
    await poll(() => closed, 'the gateway to finish closing', GRACE_MS + 2_000, 10);
    expect(performance.now() - endedAt).toBeLessThan(2_000);
    await poll(async () => (await busySlots(server)) === 0, 'the server idle', 5_000);
  });

  it('does not sit out the grace period for a client connection that never sent a request', async () => {
    const gw = await gateway();
    // one normal request first, so the gateway is warm
    expect((await postJson(gw.baseURL, '/chat/completions', { model: PUBLIC_MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 })).status).toBe(200);
    // a pooled connection the client opened but has not used (yet)
    const port = Number(new URL(gw.url).port);
    const idle = net.connect(port, '127.0.0.1');
    await new Promise((resolve, reject) => idle.once('connect', resolve).once('error', reject));
    idle.on('error', () => undefined);
    const started = performance.now();
    try {
      await gw.close();
      const took = performance.now() - started;
      expect(took, `shutdown took ${Math.round(took)} ms with an unused client connection open (grace ${GRACE_MS} ms)`).toBeLessThan(2_000);
    } finally {
      idle.destroy();
    }
  });
});
