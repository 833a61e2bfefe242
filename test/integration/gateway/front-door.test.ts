/**
 * The front door (issue 10 item 5): GET /health, CORS for browser clients
 * (preflight before authentication, allow headers on answers, streams and
 * errors), the OpenAI routes without the /v1 prefix, and an unknown URL that
 * says so.
 */
import { describe, expect, it } from 'vitest';
import { generateApiKey } from '../../../src/limits/api-keys.ts';
import { backendFor, closedAfterEach, post } from '../../helpers/gateway.ts';

const { sim, gateway: gatewayWith } = closedAfterEach();
const key = generateApiKey();
const origin = 'https://app.example.com';

async function gateway(cors?: Record<string, unknown>) {
  const simulator = await sim({ flavor: 'vllm' });
  return gatewayWith({
    backends: [backendFor('v', simulator)],
    models: [{ name: 'm', targets: [{ backend: 'v', model: 'Qwen/Qwen3-8B' }] }],
    auth: { mode: 'keys', keys: [{ id: 'k', hash: key.hash, tenant: 't' }] },
    ...(cors ? { server: { cors } } : {}),
  });
}

const chat = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 });

describe('front door', () => {
  it('GET /health answers like /healthz, without a key', async () => {
    const gw = await gateway();
    const response = await fetch(`${gw.url}/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('serves the OpenAI routes without the /v1 prefix, with the same authorisation', async () => {
    const gw = await gateway();
    expect((await post(`${gw.url}/chat/completions`, chat)).status).toBe(401);
    const answered = await post(`${gw.url}/chat/completions`, chat, { 'content-type': 'application/json', authorization: `Bearer ${key.secret}` });
    expect(answered.status).toBe(200);
    const models = await fetch(`${gw.url}/models`, { headers: { authorization: `Bearer ${key.secret}` } });
    expect(models.status).toBe(200);
    expect(((await models.json()) as { data: Array<{ id: string }> }).data.map((model) => model.id)).toEqual(['m']);
    expect((await fetch(`${gw.url}/models/m`, { headers: { authorization: `Bearer ${key.secret}` } })).status).toBe(200);
  });

  it('an unknown URL says "unknown URL", never anything like model not found', async () => {
    const gw = await gateway();
    const response = await post(`${gw.url}/v1/chat/complete`, chat);
    expect(response.status).toBe(404);
    expect(response.json.error.code).toBe('unknown_url');
    expect(response.json.error.message).toMatch(/^Unknown URL/);
    expect(response.json.error.message).not.toMatch(/does not exist/);
  });

  it('CORS is off by default: no allow headers, and a preflight is not answered as one', async () => {
    const gw = await gateway();
    const answer = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      body: chat,
      headers: { 'content-type': 'application/json', origin, authorization: `Bearer ${key.secret}` },
    });
    expect(answer.headers.get('access-control-allow-origin')).toBeNull();
    const preflight = await fetch(`${gw.url}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST' } });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('with server.cors.origins: preflight answered before auth, allow headers on answers, streams and errors; other origins get none', async () => {
    const gw = await gateway({ origins: [origin] });
    const preflight = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(origin);
    expect(preflight.headers.get('access-control-allow-methods')).toContain('POST');
    expect(preflight.headers.get('access-control-allow-headers')).toBe('authorization, content-type');

    const auth = { 'content-type': 'application/json', origin, authorization: `Bearer ${key.secret}` };
    const json = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: chat, headers: auth });
    expect(json.status).toBe(200);
    expect(json.headers.get('access-control-allow-origin')).toBe(origin);
    expect(json.headers.get('access-control-expose-headers')).toContain('x-request-id');
    const stream = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ ...JSON.parse(chat), stream: true }), headers: auth });
    expect(stream.headers.get('access-control-allow-origin')).toBe(origin);
    expect(await stream.text()).toContain('[DONE]');
    const refused = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: chat, headers: { 'content-type': 'application/json', origin } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe(origin);

    const stranger = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: chat, headers: { ...auth, origin: 'https://evil.example' } });
    expect(stranger.headers.get('access-control-allow-origin')).toBeNull();
  });
});
