/**
 * A fault the client caused never counts against a backend: clients that stop
 * reading a stream do not open a healthy backend's circuit for everyone.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { backendFor, closedAfterEach, waitFor } from '../../helpers/gateway.ts';

const { sim, gateway: gatewayWith } = closedAfterEach();
const sockets: Socket[] = [];
afterEach(() => {
  while (sockets.length > 0) sockets.pop()?.destroy();
});

const messages = [{ role: 'user' as const, content: 'hello' }];

/** Sends a streaming request over a raw socket that never reads the answer (its receive window fills and stays full). */
function stalledReader(url: string, body: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) }, () => {
      socket.pause(); // never read: the kernel's receive buffer fills, then the gateway's send buffer
      socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      resolve(socket);
    });
    socket.on('error', reject);
    sockets.push(socket);
  });
}

async function circuitOf(url: string, id: string): Promise<string> {
  const admin = (await (await fetch(`${url}/admin/backends`)).json()) as { backends: Array<{ id: string; circuit: { state: string } }> };
  return admin.backends.find((backend) => backend.id === id)?.circuit.state ?? 'missing';
}

describe('faults caused by the client', () => {
  it('clients that stop reading a stream do not open the circuit of a healthy backend', async () => {
    const healthy = await sim({ flavor: 'vllm', tokensPerSecond: 8_000, maxModelLen: 1_000_000 });
    const gateway = await gatewayWith({
      backends: [backendFor('healthy', healthy, { timeouts: { idleMs: 1_000 }, circuit: { consecutiveFailures: 3 } })],
      models: [{ name: 'm', targets: [{ backend: 'healthy', model: 'Qwen/Qwen3-8B' }] }],
    });
    const body = JSON.stringify({ model: 'm', messages, max_tokens: 60_000, stream: true });
    for (let index = 0; index < 6; index++) await stalledReader(gateway.url, body);
    // Each stalled stream ends once its client has read nothing for the idle limit (a bound on what it holds).
    const completed = () =>
      gateway.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.msg === 'request completed' && line.url === '/v1/chat/completions');
    await waitFor(() => completed().length === 6, 15_000, 'the stalled streams to be cut');
    expect(await circuitOf(gateway.url, 'healthy')).toBe('closed');
    for (const line of completed()) expect(line).toMatchObject({ status: 200, errorName: 'SWY_ERR_CLIENT_STALLED', errorOrigin: 'gateway', clientClosed: true });
    const answer = await gateway.client().chat.completions.create({ model: 'm', messages, max_tokens: 3 });
    expect(answer.choices[0]?.message.content).toBeTruthy();
    await waitFor(() => sockets.every((socket) => socket.destroyed || socket.readableEnded || socket.closed), 1_000, 'stalled sockets closed').catch(() => undefined);
  });
});
