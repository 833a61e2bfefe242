/**
 * Authorisation follows the matched route, never the raw URL: every spelling of
 * every protected path (percent-encoded letters, digits and slashes, dot
 * segments, double and back slashes, case changes, double encoding) is refused
 * without credentials, on the client listener and on the separate admin
 * listener, with an OpenAI-shaped error — and the canonical paths still work
 * with them.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../../src/limits/api-keys.ts';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { backendFor, startSim, startTestGateway, type TestGateway } from '../../helpers/gateway.ts';

const adminToken = 'admin-token-0123456789abcdef';
const key = generateApiKey();

/** A raw request: the path goes on the wire exactly as written (fetch would normalise it). */
function raw(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; text: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: url.hostname, port: url.port, method, path, headers: body ? { 'content-type': 'application/json', ...headers } : headers }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        text += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

/** Hostile spellings of one path: each must reach nothing it protects. */
function spellings(path: string): string[] {
  const out = new Set<string>();
  const segments = path.split('/').slice(1);
  for (let index = 0; index < path.length; index++) {
    const char = path[index] as string;
    if (/[A-Za-z0-9]/.test(char)) {
      const code = char.charCodeAt(0).toString(16);
      out.add(`${path.slice(0, index)}%${code}${path.slice(index + 1)}`);
      out.add(`${path.slice(0, index)}%${code.toUpperCase()}${path.slice(index + 1)}`);
      out.add(`${path.slice(0, index)}%25${code}${path.slice(index + 1)}`); // double encoding
    }
    if (char === '/' && index > 0) {
      out.add(`${path.slice(0, index)}%2F${path.slice(index + 1)}`);
      out.add(`${path.slice(0, index)}%2f${path.slice(index + 1)}`);
      out.add(`${path.slice(0, index)}//${path.slice(index + 1)}`);
      out.add(`${path.slice(0, index)}\\${path.slice(index + 1)}`);
      out.add(`${path.slice(0, index)}/./${path.slice(index + 1)}`);
      out.add(`${path.slice(0, index)}/%2e/${path.slice(index + 1)}`);
      out.add(`${path.slice(0, index)}/x/../${path.slice(index + 1)}`);
      out.add(`${path.slice(0, index)}/x/%2e%2e/${path.slice(index + 1)}`);
      out.add(`${path.slice(0, index)}/x/%2E%2E/${path.slice(index + 1)}`);
    }
  }
  out.add(`/${segments.map((segment) => segment.toUpperCase()).join('/')}`);
  out.add(`//${path.slice(1)}`);
  out.add(`${path}/`);
  out.add(`${path}?x=/v1/models`);
  out.add(`${path}%00`);
  out.add(`${path}%zz`);
  return [...out];
}

function expectRefused(response: { status: number; text: string }, what: string): void {
  expect([400, 401, 403, 404], `${what} -> ${response.status} ${response.text.slice(0, 200)}`).toContain(response.status);
  const body = JSON.parse(response.text) as { error: { message: string; type: string; code: string } };
  expect(typeof body.error.message, what).toBe('string');
  expect(typeof body.error.code, what).toBe('string');
}

const chatBody = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });

let simulator: Simulator;
let shared: TestGateway;
let separate: TestGateway;

beforeAll(async () => {
  simulator = await startSim({ flavor: 'vllm' });
  const common = {
    backends: [backendFor('b', simulator)],
    models: [{ name: 'm', aliases: ['org/m'], targets: [{ backend: 'b', model: 'Qwen/Qwen3-8B' }] }],
    auth: { mode: 'keys', keys: [{ id: 'k', hash: key.hash, tenant: 't' }] },
  };
  shared = await startTestGateway({ ...common, admin: { token: adminToken } });
  separate = await startTestGateway({ ...common, admin: { token: adminToken, port: 0 } });
});

afterAll(async () => {
  await shared?.close();
  await separate?.close();
  await simulator?.close();
});

const clientPaths: Array<[method: string, path: string]> = [
  ['POST', '/v1/chat/completions'],
  ['POST', '/v1/completions'],
  ['POST', '/v1/embeddings'],
  ['GET', '/v1/models'],
  ['GET', '/v1/models/m'],
];
const adminPaths: Array<[method: string, path: string]> = [
  ['GET', '/admin/backends'],
  ['GET', '/metrics'],
];

describe('encoded paths never skip authorisation', () => {
  it.each(clientPaths)('%s %s: every spelling is refused without an API key (client listener)', async (method, path) => {
    const plain = await raw(shared.url, method, path, {}, method === 'POST' ? chatBody : undefined);
    expect(plain.status).toBe(401);
    for (const spelling of spellings(path)) {
      expectRefused(await raw(shared.url, method, spelling, {}, method === 'POST' ? chatBody : undefined), `${method} ${spelling}`);
    }
  });

  it.each(adminPaths)('%s %s: every spelling is refused without the admin token, with a client key too (client listener)', async (method, path) => {
    expect((await raw(shared.url, method, path)).status).toBe(401);
    for (const spelling of spellings(path)) {
      expectRefused(await raw(shared.url, method, spelling), `${method} ${spelling}`);
      expectRefused(await raw(shared.url, method, spelling, { authorization: `Bearer ${key.secret}` }), `${method} ${spelling} with a client key`);
    }
  });

  it('the admin listener refuses every spelling of /admin/backends without the token, and the client listener does not serve it at all', async () => {
    const adminUrl = separate.adminUrl as string;
    expect((await raw(adminUrl, 'GET', '/admin/backends')).status).toBe(401);
    for (const spelling of spellings('/admin/backends')) {
      expectRefused(await raw(adminUrl, 'GET', spelling), `admin listener GET ${spelling}`);
      expectRefused(await raw(separate.url, 'GET', spelling, { authorization: `Bearer ${adminToken}` }), `client listener GET ${spelling}`);
    }
    for (const spelling of spellings('/metrics')) {
      expectRefused(await raw(separate.url, 'GET', spelling, { authorization: `Bearer ${key.secret}` }), `client listener GET ${spelling}`);
    }
  });

  it('non-canonical spellings get 400 invalid_path naming the problem', async () => {
    for (const path of [
      '/%761/chat/completions',
      '/v%31/models',
      '/%61dmin/backends',
      '/%6detrics',
      '/v1/./models',
      '/v1/%2e%2e/v1/models',
      '/v1//models',
      '/v1%2Fmodels',
      '/v1/models/%zz',
    ]) {
      const response = await raw(shared.url, 'GET', path, { authorization: `Bearer ${adminToken}` });
      expect(response.status, path).toBe(400);
      expect(JSON.parse(response.text).error.code, path).toBe('invalid_path');
    }
  });

  it('canonical paths work with credentials, and an encoded slash inside a model id is allowed', async () => {
    const auth = { authorization: `Bearer ${key.secret}` };
    expect((await raw(shared.url, 'POST', '/v1/chat/completions', auth, chatBody)).status).toBe(200);
    expect((await raw(shared.url, 'GET', '/v1/models', auth)).status).toBe(200);
    const byId = await raw(shared.url, 'GET', '/v1/models/org%2Fm', auth);
    expect(byId.status, byId.text).toBe(200);
    expect(JSON.parse(byId.text).id).toBe('org/m');
    expect((await raw(shared.url, 'GET', '/admin/backends', { authorization: `Bearer ${adminToken}` })).status).toBe(200);
    expect((await raw(shared.url, 'GET', '/metrics', { authorization: `Bearer ${adminToken}` })).status).toBe(200);
    expect((await raw(separate.adminUrl as string, 'GET', '/metrics')).status).toBe(200);
    expect((await raw(shared.url, 'GET', '/healthz')).status).toBe(200);
  });
});
