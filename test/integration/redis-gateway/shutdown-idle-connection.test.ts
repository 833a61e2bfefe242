/**
 * Found by this suite: after a client aborts a stream, Node's bundled fetch
 * (undici) opens a spare connection to the gateway that never sends a
 * request. Node's closeIdleConnections() does not count such a connection as
 * idle, so graceful shutdown waited the whole server.shutdownGraceMs for it
 * (load balancers and browsers pre-open connections the same way). Nothing
 * is in flight here: shutdown must be quick.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { startSim, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.ts';
import { simBackend, simModel } from './harness.ts';

let sim: Simulator;

beforeAll(async () => {
  sim = await startSim({ flavor: 'vllm' });
});

afterAll(async () => {
  await sim?.close();
});

/** Connects and waits until the gateway has accepted the connection (not just the kernel's backlog). */
async function opened(gateway: TestGateway): Promise<Socket> {
  let accepted = false;
  gateway.app.server.once('connection', () => (accepted = true));
  const socket = await new Promise<Socket>((resolve, reject) => {
    const client = connect({ port: Number(new URL(gateway.url).port), host: '127.0.0.1' });
    client.once('connect', () => resolve(client));
    client.once('error', reject);
  });
  await waitFor(() => accepted, 10_000, 'the gateway to accept the connection');
  return socket;
}

describe('graceful shutdown with connections that carry no request', () => {
  it('an idle keep-alive connection does not hold shutdown (control)', async () => {
    const gateway = await startTestGateway({ backends: [simBackend('sim', sim)], models: [simModel('chat', 'sim', sim)], server: { shutdownGraceMs: 3_000 } });
    const socket = await opened(gateway);
    socket.write('GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n');
    await new Promise((resolve) => socket.once('data', resolve));
    const started = Date.now();
    await gateway.close();
    expect(Date.now() - started).toBeLessThan(1_000);
    socket.destroy();
  });

  it('a connection that never sent a request does not hold shutdown for the grace period', async () => {
    const gateway = await startTestGateway({ backends: [simBackend('sim', sim)], models: [simModel('chat', 'sim', sim)], server: { shutdownGraceMs: 3_000 } });
    const socket = await opened(gateway);
    const started = Date.now();
    await gateway.close();
    const took = Date.now() - started;
    socket.destroy();
    expect(took, 'shutdown waited for a connection with nothing in flight').toBeLessThan(1_000);
  });
});
