/**
 * How a backend serves a surface: natively when its kind does, translated
 * otherwise, as `backends[].surfaces` says when set, and learnt from a 404 on
 * the native path (a runtime older than the surface). The upstream here is a
 * vLLM simulator behind a small loopback front that can hide one path, the
 * way an older vLLM (FastAPI: `{"detail":"Not Found"}`) answers it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { post, startSim, startTestGateway, type TestGateway } from '../../helpers/gateway.ts';

let sim: Simulator;
let front: Server;
let frontUrl: string;
/** Paths the front saw, in order. */
const seen: string[] = [];
/** What the front answers on /v1/responses instead of passing it on. */
let hidden: { status: number; body: string } | undefined;

beforeAll(async () => {
  sim = await startSim({ flavor: 'vllm' });
  front = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', async () => {
      const path = request.url ?? '/';
      if (request.method === 'POST') seen.push(path);
      if (request.method === 'POST' && path === '/v1/responses' && hidden) {
        response.writeHead(hidden.status, { 'content-type': 'application/json' }).end(hidden.body);
        return;
      }
      const upstream = await fetch(`${sim.url}${path}`, {
        method: request.method ?? 'GET',
        headers: { 'content-type': 'application/json' },
        ...(request.method === 'POST' ? { body: Buffer.concat(chunks) } : {}),
      });
      response.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
      response.end(Buffer.from(await upstream.arrayBuffer()));
    });
  });
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  frontUrl = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => front?.close(resolve));
  await sim?.close();
});

async function gatewayWith(backendExtra: Record<string, unknown>): Promise<TestGateway> {
  return startTestGateway({
    backends: [{ id: 'old-vllm', kind: 'vllm', url: frontUrl, ...backendExtra }],
    models: [{ name: 'm', targets: [{ backend: 'old-vllm', model: 'Qwen/Qwen3-8B' }] }],
  });
}

const responses = (gateway: TestGateway) => post(`${gateway.url}/v1/responses`, JSON.stringify({ model: 'm', input: 'Hello', max_output_tokens: 4 }));

describe('native or translated per backend', () => {
  it('learns from a 404 on the native path: the same request is retried translated, and so are the next ones', async () => {
    hidden = { status: 404, body: '{"detail":"Not Found"}' };
    seen.length = 0;
    const gateway = await gatewayWith({});
    try {
      const first = await responses(gateway);
      expect(first.status).toBe(200);
      expect(first.headers.get('x-switchyard-translated')).toBe('responses->chat');
      expect(first.headers.get('x-switchyard-attempts')).toBe('2');
      expect(seen).toEqual(['/v1/responses', '/v1/chat/completions']);
      const second = await responses(gateway);
      expect(second.status).toBe(200);
      expect(second.headers.get('x-switchyard-attempts')).toBe('1');
      expect(seen).toEqual(['/v1/responses', '/v1/chat/completions', '/v1/chat/completions']);
      const line = gateway.logs.find((entry) => entry.includes('"url":"/v1/responses"'));
      expect(line).toContain('old-vllm:not-native');
      // Not held against the backend: its circuit stays closed.
      expect(gateway.app.switchyard.backends.byId.get('old-vllm')?.circuit.state).toBe('closed');
    } finally {
      await gateway.close();
      hidden = undefined;
    }
  });

  it('does not learn from a 404 about the model: that is an error, and the path stays native', async () => {
    hidden = { status: 404, body: '{"error":{"message":"The model `Qwen/Qwen3-8B` does not exist.","type":"NotFoundError","param":null,"code":404}}' };
    seen.length = 0;
    const gateway = await gatewayWith({});
    try {
      expect((await responses(gateway)).status).toBeGreaterThanOrEqual(400);
      expect((await responses(gateway)).status).toBeGreaterThanOrEqual(400);
      expect(seen).toEqual(['/v1/responses', '/v1/responses']);
    } finally {
      await gateway.close();
      hidden = undefined;
    }
  });

  it('keeps a mode the operator pinned: native stays native even on 404', async () => {
    hidden = { status: 404, body: '{"detail":"Not Found"}' };
    seen.length = 0;
    const gateway = await gatewayWith({ surfaces: { responses: 'native' } });
    try {
      expect((await responses(gateway)).status).toBeGreaterThanOrEqual(400);
      expect((await responses(gateway)).status).toBeGreaterThanOrEqual(400);
      expect(seen).toEqual(['/v1/responses', '/v1/responses']);
    } finally {
      await gateway.close();
      hidden = undefined;
    }
  });

  it('sends nothing to a backend with the surface off', async () => {
    seen.length = 0;
    const gateway = await gatewayWith({ surfaces: { responses: 'off' } });
    try {
      const answer = await responses(gateway);
      expect(answer.status).toBe(400);
      expect(answer.json.error.code).toBe('unsupported_endpoint');
      expect(seen).toEqual([]);
    } finally {
      await gateway.close();
    }
  });

  it('refuses at startup a translation the surface does not have', async () => {
    await expect(gatewayWith({ surfaces: { rerank: 'translate' } })).rejects.toThrow(/surfaces\.rerank: rerank has no translation onto chat completions/);
  });
});
