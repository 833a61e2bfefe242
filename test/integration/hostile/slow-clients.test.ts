/**
 * Slow clients and connection floods, over raw sockets against a real
 * listening gateway: slow headers and slow bodies are cut with an
 * OpenAI-shaped 408 (an unauthenticated slow body after its 401 too, without a
 * second answer), idle connections that never send a request are closed, and
 * connections past server.maxConnections are refused while the ones held keep
 * working. The defaults bound all of it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../../src/limits/api-keys.ts';
import { closedAfterEach, waitFor } from '../../helpers/gateway.ts';
import { openRaw, rawResponses, type RawConnection } from '../../helpers/raw-socket.ts';
import { startScriptedBackend, type ScriptedBackend } from '../../helpers/scripted-backend.ts';

const { gateway: gatewayWith } = closedAfterEach();
const backends: ScriptedBackend[] = [];
const connections: RawConnection[] = [];
afterEach(async () => {
  for (const connection of connections.splice(0)) connection.socket.destroy();
  while (backends.length > 0) await backends.pop()?.close();
});

async function gatewayFor(extra: Record<string, unknown> = {}) {
  const backend = await startScriptedBackend((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(
      JSON.stringify({ id: 'c', object: 'chat.completion', created: 1, model: 'x', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }] }),
    );
  });
  backends.push(backend);
  const gateway = await gatewayWith({
    backends: [{ id: 'b', kind: 'openai', url: backend.url, health: { intervalMs: 60_000 } }],
    models: [{ name: 'x', targets: [{ backend: 'b', model: 'x' }] }],
    ...extra,
  });
  return { gateway, backend };
}

async function open(url: string): Promise<RawConnection> {
  const connection = await openRaw(url);
  connections.push(connection);
  return connection;
}

const body = JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'hello there' }] });
const head = (extra = '') => `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n${extra}\r\n`;

function expectOpenAIError(text: string, status: number, code: string): void {
  const [response] = rawResponses(text);
  expect(response?.status).toBe(status);
  expect(JSON.parse(response?.body ?? '{}')).toEqual({ error: { message: expect.any(String), type: 'invalid_request_error', param: null, code } });
}

describe('slow clients', () => {
  it('cuts slow headers at server.headersTimeoutMs with a 408 request_timeout', async () => {
    const { gateway } = await gatewayFor({ server: { headersTimeoutMs: 600, requestTimeoutMs: 5_000 } });
    const connection = await open(gateway.url);
    void connection.trickle(['POST /v1/chat/completions HTTP/1.1\r\n', ...Array.from({ length: 40 }, (_, index) => `X-Slow-${index}: 1\r\n`)], 150);
    const closedAfter = await connection.closed;
    expect(closedAfter).toBeLessThan(2_000);
    expectOpenAIError(connection.received(), 408, 'request_timeout');
  });

  it('closes a connection that never sends a request once the headers timeout passes', async () => {
    const { gateway } = await gatewayFor({ server: { headersTimeoutMs: 600, requestTimeoutMs: 5_000 } });
    const connection = await open(gateway.url);
    expect(await connection.closed).toBeLessThan(2_000);
  });

  it('cuts a body sent 1 byte at a time at server.requestTimeoutMs with a 408, and nothing goes upstream', async () => {
    const { gateway, backend } = await gatewayFor({ server: { headersTimeoutMs: 500, requestTimeoutMs: 1_200 } });
    const connection = await open(gateway.url);
    void connection.trickle([head(), ...body.split('')], 100);
    const closedAfter = await connection.closed;
    expect(closedAfter).toBeLessThan(3_000);
    expectOpenAIError(connection.received(), 408, 'request_timeout');
    expect(backend.requests).toHaveLength(0);
    // The refusal is counted like every other error.
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    expect(metrics).toMatch(/switchyard_errors_total\{[^}]*name="SWY_ERR_REQUEST_TIMEOUT"[^}]*\} 1/);
  });

  it('answers an unauthenticated slow body 401 at once, then closes the connection without a second answer', async () => {
    const key = generateApiKey();
    const { gateway } = await gatewayFor({ server: { headersTimeoutMs: 500, requestTimeoutMs: 1_500 }, auth: { mode: 'keys', keys: [{ id: 'k', hash: key.hash }] } });
    const connection = await open(gateway.url);
    void connection.trickle([head(), ...body.split('')], 100);
    await waitFor(() => connection.received().includes('\r\n\r\n{'), 1_000, 'the 401');
    const closedAfter = await connection.closed;
    expect(closedAfter).toBeLessThan(3_500);
    const responses = rawResponses(connection.received());
    expect(responses.map((response) => response.status)).toEqual([401]);
    expect(JSON.parse(responses[0]?.body ?? '{}').error.code).toBe('invalid_api_key');
  });

  it('a body that arrives in time is served, and the connection is reused', async () => {
    const { gateway } = await gatewayFor({ server: { headersTimeoutMs: 500, requestTimeoutMs: 3_000 } });
    const connection = await open(gateway.url);
    await connection.trickle([head(), body.slice(0, 10), body.slice(10)], 200);
    await waitFor(() => rawResponses(connection.received()).length === 1, 2_000, 'the answer');
    connection.socket.write(head() + body);
    await waitFor(() => rawResponses(connection.received()).length === 2, 2_000, 'the second answer');
    expect(rawResponses(connection.received()).map((response) => response.status)).toEqual([200, 200]);
  });
});

describe('connection cap', () => {
  it('refuses connections past server.maxConnections; the ones held keep working, and a freed slot is reused', async () => {
    const { gateway } = await gatewayFor({ server: { maxConnections: 4 } });
    const held = await Promise.all(Array.from({ length: 4 }, () => open(gateway.url)));
    const extra = await open(gateway.url);
    expect(await extra.closed).toBeLessThan(1_000);
    expect(extra.received()).toBe('');
    held[0]?.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => rawResponses(held[0]?.received() ?? '').length === 1, 1_000, 'the health answer');
    expect(rawResponses(held[0]?.received() ?? '')[0]?.status).toBe(200);
    held[1]?.socket.destroy();
    await held[1]?.closed;
    const open_ = () => new Promise<number>((resolve) => gateway.app.server.getConnections((_error, count) => resolve(count)));
    await waitFor(async () => (await open_()) <= 3, 1_000, 'the slot freed');
    const again = await open(gateway.url);
    again.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => rawResponses(again.received()).length === 1, 1_000, 'an answer on the freed slot');
  });

  it('bounds every listener by default: headers, whole request, connections', async () => {
    const { gateway } = await gatewayFor();
    const server = gateway.app.server;
    expect(server.headersTimeout).toBe(10_000);
    expect(server.requestTimeout).toBe(60_000);
    expect(server.maxConnections).toBe(10_000);
    expect(gateway.config.server.maxInflightBodyBytes).toBe(128 * 1024 * 1024);
  });
});
