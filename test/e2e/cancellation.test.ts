/**
 * Clients that leave: the real llama-server's slot must be free again within
 * a second, streamed or not (llama.cpp itself notices a dropped non-streaming
 * request late or never, so the gateway streams from it and cancels), and a
 * request that leaves while queued in the gateway never reaches a server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APIUserAbortError, type OpenAI } from 'openai';

import type { TestGateway } from '../helpers/gateway.ts';
import { adminBackends, busySlots, Cleanup, metrics, poll, postJson, PUBLIC_MODEL, readUntil, sample, slots, startGatewayFor, startServers } from './helpers/e2e.ts';
import type { LlamaServer } from './helpers/llama-server.ts';

const SLOTS = 2;
// 4000 tokens take the tiny model 10+ s on one thread: a request still running a second after the
// abort would be unmistakable.
const MAX_TOKENS = 4000;
const cleanup = new Cleanup();
let servers: Record<string, LlamaServer>;
let gateway: TestGateway;
let client: OpenAI;

beforeAll(async () => {
  const [a, b] = await startServers(2, { slots: SLOTS, ctx: 8192 }, cleanup);
  servers = { 'llama-a': a as LlamaServer, 'llama-b': b as LlamaServer };
  gateway = await startGatewayFor(servers, cleanup, { backend: { maxConcurrency: SLOTS } });
  client = gateway.client({ timeout: 60_000 });
});

afterAll(() => cleanup.run());

const messages = [{ role: 'user' as const, content: 'List every signal on the line, with its aspect.' }];

async function allIdle(): Promise<void> {
  await poll(
    async () => {
      for (const server of Object.values(servers)) if ((await busySlots(server)) !== 0) return false;
      return true;
    },
    'every slot idle',
    15_000,
  );
}

/** Decoded tokens of the busy slot(s) of a server, as /slots reports them. */
async function decoding(server: LlamaServer): Promise<number[]> {
  return (await slots(server)).filter((slot) => slot.is_processing).map((slot) => slot.next_token?.[0]?.n_decoded ?? 0);
}

async function cancelledCount(): Promise<number> {
  return sample(await metrics(gateway.url), 'switchyard_upstream_cancelled_total') ?? 0;
}

/** Polls the server until no slot is processing; returns the time it took after `since`. */
async function freedWithin(server: LlamaServer, since: number): Promise<number> {
  await poll(async () => (await busySlots(server)) === 0, `the slot of ${server.url} to be free again`, 10_000, 10);
  return performance.now() - since;
}

describe('a client that leaves frees the llama.cpp slot within one second', () => {
  it('streaming client aborts mid-stream', async () => {
    await allIdle();
    const cancelledBefore = await cancelledCount();
    const controller = new AbortController();
    const { data: stream, response } = await client.chat.completions
      .create({ model: PUBLIC_MODEL, messages, max_tokens: MAX_TOKENS, stream: true }, { signal: controller.signal })
      .withResponse();
    const server = servers[response.headers.get('x-switchyard-backend') ?? ''] as LlamaServer;
    expect(server).toBeDefined();
    let received = 0;
    let abortedAt = 0;
    let decodedBefore: number[] = [];
    const consumed = (async () => {
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content) received++;
        if (received === 50) {
          // it really is generating on that server, well short of max_tokens
          decodedBefore = await decoding(server);
          abortedAt = performance.now();
          controller.abort();
        }
      }
    })();
    // the SDK ends the iteration quietly (or with an abort error) once its signal fires
    await consumed.catch((error: unknown) => expect(error).toBeInstanceOf(APIUserAbortError));
    expect(abortedAt).toBeGreaterThan(0);
    expect(received).toBeLessThan(MAX_TOKENS);
    expect(decodedBefore).toHaveLength(1);
    expect(decodedBefore[0]).toBeGreaterThanOrEqual(50);
    expect(decodedBefore[0]).toBeLessThan(MAX_TOKENS);
    const ms = await freedWithin(server, abortedAt);
    expect(ms, `slot freed ${Math.round(ms)} ms after the abort`).toBeLessThan(1_000);
    await poll(async () => (await cancelledCount()) === cancelledBefore + 1, 'switchyard_upstream_cancelled_total + 1', 3_000);
  });

  it('non-streaming client aborts while the answer is being generated', async () => {
    await allIdle();
    const cancelledBefore = await cancelledCount();
    const controller = new AbortController();
    const pending = client.chat.completions.create({ model: PUBLIC_MODEL, messages, max_tokens: MAX_TOKENS }, { signal: controller.signal });
    const settled = pending.then(
      () => 'answered',
      (error: unknown) => error,
    );
    // find the server that took it, and let it generate for a while
    let server: LlamaServer | undefined;
    await poll(
      async () => {
        for (const candidate of Object.values(servers)) {
          const decoded = await decoding(candidate);
          if (decoded.length === 1 && (decoded[0] ?? 0) >= 100) server = candidate;
        }
        return server !== undefined;
      },
      'one server to have decoded 100 tokens of the request',
      15_000,
      20,
    );
    const abortedAt = performance.now();
    controller.abort();
    expect(await settled).toBeInstanceOf(APIUserAbortError);
    const ms = await freedWithin(server as LlamaServer, abortedAt);
    expect(ms, `slot freed ${Math.round(ms)} ms after the abort`).toBeLessThan(1_000);
    await poll(async () => (await cancelledCount()) === cancelledBefore + 1, 'switchyard_upstream_cancelled_total + 1', 3_000);
    // and it stays free: nothing was retried elsewhere on the client's behalf
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const other of Object.values(servers)) expect(await busySlots(other)).toBe(0);
  });

  it('raw fetch, non-streaming, connection dropped: same', async () => {
    await allIdle();
    const controller = new AbortController();
    const request = postJson(gateway.baseURL, '/completions', { model: PUBLIC_MODEL, prompt: 'The timetable reads', max_tokens: MAX_TOKENS }, { signal: controller.signal }).catch(
      (error: Error) => error,
    );
    let server: LlamaServer | undefined;
    await poll(
      async () => {
        for (const candidate of Object.values(servers)) if (((await decoding(candidate))[0] ?? 0) >= 100) server = candidate;
        return server !== undefined;
      },
      'the completion to be generating',
      15_000,
      20,
    );
    const abortedAt = performance.now();
    controller.abort();
    expect(await request).toBeInstanceOf(Error);
    const ms = await freedWithin(server as LlamaServer, abortedAt);
    expect(ms, `slot freed ${Math.round(ms)} ms after the abort`).toBeLessThan(1_000);
  });

  it('a request that leaves while queued in the gateway never reaches a server', async () => {
    await allIdle();
    // fill all 4 slots through the gateway (maxConcurrency = slots)
    const holders: AbortController[] = [];
    try {
      for (let index = 0; index < 2 * SLOTS; index++) {
        const controller = new AbortController();
        holders.push(controller);
        const response = await postJson(
          gateway.baseURL,
          '/chat/completions',
          { model: PUBLIC_MODEL, messages, max_tokens: MAX_TOKENS, stream: true },
          { signal: controller.signal },
        );
        await readUntil(response, (text) => text.includes('"content":"'));
      }
      const queuedController = new AbortController();
      const queued = postJson(
        gateway.baseURL,
        '/chat/completions',
        { model: PUBLIC_MODEL, messages: [{ role: 'user', content: 'a different prompt, queued' }], max_tokens: MAX_TOKENS },
        {
          signal: queuedController.signal,
        },
      ).catch((error: Error) => error);
      await poll(
        async () => {
          const admin = await adminBackends(gateway);
          return (admin['llama-a']?.load.gatewayQueue ?? 0) + (admin['llama-b']?.load.gatewayQueue ?? 0) === 1;
        },
        'the fifth request to wait in the gateway queue',
        5_000,
      );
      queuedController.abort();
      expect(await queued).toBeInstanceOf(Error);
      await poll(
        async () => {
          const admin = await adminBackends(gateway);
          return (admin['llama-a']?.load.gatewayQueue ?? 0) + (admin['llama-b']?.load.gatewayQueue ?? 0) === 0;
        },
        'the gateway queue to empty',
        3_000,
      );
      for (const holder of holders) holder.abort();
      await allIdle();
      await new Promise((resolve) => setTimeout(resolve, 300));
      // no slot picked the abandoned request up once the others left
      for (const server of Object.values(servers)) expect(await busySlots(server)).toBe(0);
      const admin = await adminBackends(gateway);
      expect(admin['llama-a']?.load.inflight).toBe(0);
      expect(admin['llama-b']?.load.inflight).toBe(0);
    } finally {
      for (const holder of holders) holder.abort();
    }
  });
});
