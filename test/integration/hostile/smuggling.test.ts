/**
 * Request-smuggling shapes and malformed framing (issue 13 item 11), on raw sockets: each is refused with a
 * 400 in OpenAI's shape (or 431 for oversized headers) and the connection closed, and no request hidden in
 * the bytes reaches the backend (counted on the simulator). A well-formed pipelined pair is the control: both
 * are answered. `max_tokens: 1e308` is a 400, not a limit refusal.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { backendFor, post, startSim, startTestGateway, type TestGateway } from '../../helpers/gateway.ts';
import { openRaw, rawResponses } from '../../helpers/raw-socket.ts';

let sim: Simulator;
let gateway: TestGateway;

beforeAll(async () => {
  sim = await startSim({ flavor: 'vllm' });
  gateway = await startTestGateway({
    backends: [backendFor('vllm', sim)],
    models: [{ name: 'm', targets: [{ backend: 'vllm', model: sim.options.model }] }],
  });
});

afterAll(async () => {
  await gateway?.close();
  await sim?.close();
});

const chatBody = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
/** A second request hidden in the first one's body. */
const smuggled = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${chatBody.length}\r\n\r\n${chatBody}`;

/** Sends `bytes`, waits for the close (or `waitMs`), returns the responses and how many requests reached the backend. */
async function exchange(bytes: string, waitMs = 2_000): Promise<{ responses: ReturnType<typeof rawResponses>; upstream: number; closed: boolean }> {
  const before = sim.stats().requests;
  const connection = await openRaw(gateway.url);
  connection.socket.write(bytes, 'latin1');
  const closed = await Promise.race([connection.closed.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), waitMs))]);
  connection.socket.destroy();
  await new Promise((resolve) => setTimeout(resolve, 50));
  return { responses: rawResponses(connection.received()), upstream: sim.stats().requests - before, closed };
}

function expectRefused(result: Awaited<ReturnType<typeof exchange>>, status = 400): void {
  expect(result.responses).toHaveLength(1);
  const [response] = result.responses;
  expect(response?.status).toBe(status);
  const error = JSON.parse(response?.body ?? '{}').error;
  expect(error).toEqual({ message: expect.any(String), type: 'invalid_request_error', param: null, code: expect.any(String) });
  expect(result.closed).toBe(true);
  expect(result.upstream).toBe(0);
}

const head = (headers: string) => `POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n${headers}\r\n`;

describe('smuggling shapes', () => {
  it('Content-Length and Transfer-Encoding together (CL.TE / TE.CL)', async () => {
    const chunked = `${chatBody.length.toString(16)}\r\n${chatBody}\r\n0\r\n\r\n`;
    expectRefused(await exchange(`${head(`Content-Length: ${chunked.length}\r\nTransfer-Encoding: chunked\r\n`)}${chunked}${smuggled}`));
    expectRefused(await exchange(`${head(`Transfer-Encoding: chunked\r\nContent-Length: 4\r\n`)}${chunked}${smuggled}`));
  });

  it('two different Content-Length headers, and a list in one', async () => {
    expectRefused(await exchange(`${head(`Content-Length: ${chatBody.length}\r\nContent-Length: ${chatBody.length + 5}\r\n`)}${chatBody}${smuggled}`));
    expectRefused(await exchange(`${head(`Content-Length: ${chatBody.length}, ${chatBody.length + 5}\r\n`)}${chatBody}${smuggled}`));
  });

  it('an obfuscated Transfer-Encoding', async () => {
    const chunked = `${chatBody.length.toString(16)}\r\n${chatBody}\r\n0\r\n\r\n`;
    for (const te of ['Transfer-Encoding: xchunked', 'Transfer-Encoding : chunked', 'Transfer-Encoding: chunked, identity', 'Transfer-Encoding:\tchunked\x0b']) {
      const result = await exchange(`${head(`${te}\r\nContent-Length: ${chunked.length}\r\n`)}${chunked}${smuggled}`);
      expectRefused(result);
    }
  });

  it('obs-fold header continuation and bare LF line endings', async () => {
    expectRefused(await exchange(`${head(`X-Folded: a\r\n b\r\nContent-Length: ${chatBody.length}\r\n`)}${chatBody}`));
    expectRefused(await exchange(`POST /v1/chat/completions HTTP/1.1\nHost: gateway\nContent-Type: application/json\nContent-Length: ${chatBody.length}\n\n${chatBody}`));
  });

  it('invalid chunk sizes', async () => {
    expectRefused(await exchange(`${head('Transfer-Encoding: chunked\r\n')}zz\r\n${chatBody}\r\n0\r\n\r\n`));
    expectRefused(await exchange(`${head('Transfer-Encoding: chunked\r\n')}-1\r\n${chatBody}\r\n0\r\n\r\n`));
  });

  it('a missing Host header', async () => {
    expectRefused(await exchange(`POST /v1/chat/completions HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: ${chatBody.length}\r\n\r\n${chatBody}`));
  });

  it('headers over the size limit get 431 in our shape', async () => {
    const result = await exchange(`${head(`X-Big: ${'a'.repeat(64 * 1024)}\r\nContent-Length: ${chatBody.length}\r\n`)}${chatBody}`);
    expect(result.responses[0]?.status).toBe(431);
    expect(JSON.parse(result.responses[0]?.body ?? '{}').error.code).toBe('headers_too_large');
    expect(result.upstream).toBe(0);
  });

  it('control: two well-formed pipelined requests are both answered', async () => {
    const result = await exchange(`${head(`Content-Length: ${chatBody.length}\r\n`)}${chatBody}${smuggled}`, 3_000);
    expect(result.responses.map((response) => response.status)).toEqual([200, 200]);
    expect(result.upstream).toBe(2);
  });
});

describe('absurd numbers', () => {
  it('max_tokens: 1e308 is a 400 (it cannot fit any context window), not a limit refusal', async () => {
    const answer = await post(`${gateway.baseURL}/chat/completions`, `{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":1e308}`);
    expect(answer.status).toBe(400);
    expect(answer.json.error).toMatchObject({ type: 'invalid_request_error', code: 'context_length_exceeded' });
  });
});
