/**
 * Errors keep their identity (catalogue name and origin) through logs and
 * metrics, every listener renders them through one function, and retryability
 * is one decision whether a backend's error came as a status or inside a stream.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { backendFor, closedAfterEach, post } from '../../helpers/gateway.ts';
import { startScriptedBackend, type ScriptedBackend } from '../../helpers/scripted-backend.ts';

const { sim, gateway: gatewayWith } = closedAfterEach();
const scripted: ScriptedBackend[] = [];
afterEach(async () => {
  while (scripted.length > 0) await scripted.pop()?.close();
});

const messages = [{ role: 'user' as const, content: 'hello' }];

function metricLines(text: string, name: string): string[] {
  return text.split('\n').filter((line) => line.startsWith(name));
}

describe('error identity', () => {
  it("counts a backend's 429 as an upstream error, never as a refusal by the gateway", async () => {
    const busy = await sim({ flavor: 'vllm', failRate: 1, failMode: '429' });
    const gateway = await gatewayWith({
      backends: [backendFor('busy', busy)],
      models: [{ name: 'm', targets: [{ backend: 'busy', model: 'Qwen/Qwen3-8B' }] }],
    });
    const response = await post(`${gateway.baseURL}/chat/completions`, JSON.stringify({ model: 'm', messages, max_tokens: 2 }));
    expect(response.status).toBe(429);
    expect(response.json.error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded' });
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    expect(metricLines(metrics, 'switchyard_refused_requests_total{')).toEqual([]);
    expect(metricLines(metrics, 'switchyard_errors_total{')).toEqual(['switchyard_errors_total{name="SWY_ERR_UPSTREAM_RATE_LIMITED",origin="upstream"} 1']);
    const line = gateway.logs.map((text) => JSON.parse(text) as Record<string, unknown>).find((entry) => entry.msg === 'request completed');
    expect(line).toMatchObject({ status: 429, errorCode: 'rate_limit_exceeded', errorName: 'SWY_ERR_UPSTREAM_RATE_LIMITED', errorOrigin: 'upstream' });
  });

  it('counts a refusal by the gateway itself under its name and origin gateway', async () => {
    const good = await sim({ flavor: 'vllm' });
    const gateway = await gatewayWith({
      auth: { mode: 'keys' },
      admin: { token: 'admin-token-0123456789' },
      backends: [backendFor('good', good)],
      models: [{ name: 'm', targets: [{ backend: 'good', model: 'Qwen/Qwen3-8B' }] }],
    });
    const response = await post(`${gateway.baseURL}/chat/completions`, JSON.stringify({ model: 'm', messages }), {
      'content-type': 'application/json',
      authorization: 'Bearer sk-swy-nope',
    });
    expect(response.status).toBe(401);
    const metrics = await (await fetch(`${gateway.url}/metrics`, { headers: { authorization: 'Bearer admin-token-0123456789' } })).text();
    expect(metricLines(metrics, 'switchyard_refused_requests_total{')).toEqual(['switchyard_refused_requests_total{reason="invalid_api_key"} 1']);
    expect(metricLines(metrics, 'switchyard_errors_total{')).toEqual(['switchyard_errors_total{name="SWY_ERR_INVALID_API_KEY",origin="gateway"} 1']);
  });

  /** A backend that answers a stream with one error event, then ends the body or keeps the connection open. */
  async function erroringStream(event: string, end: boolean): Promise<ScriptedBackend> {
    const backend = await startScriptedBackend((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      if (end) response.end(`data: ${event}\n\n`);
      else response.write(`data: ${event}\n\n`);
    }, 'Qwen/Qwen3-8B');
    scripted.push(backend);
    return backend;
  }

  async function streamThrough(first: ScriptedBackend) {
    const good = await sim({ flavor: 'vllm' });
    const gateway = await gatewayWith({
      backends: [{ id: 'first', kind: 'openai', url: first.url }, backendFor('good', good)],
      models: [
        {
          name: 'm',
          policy: 'weighted',
          targets: [
            { backend: 'first', model: 'Qwen/Qwen3-8B', weight: 1 },
            { backend: 'good', model: 'Qwen/Qwen3-8B', weight: 0 },
          ],
        },
      ],
    });
    const response = await fetch(`${gateway.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages, max_tokens: 3, stream: true }),
    });
    return { response, text: await response.text(), gateway, good };
  }

  it.each([true, false])('fails over on a 408 error event inside a stream, as it does on a 408 response (body ended: %s)', async (end) => {
    const first = await erroringStream('{"error":{"code":408,"message":"request timed out in the queue","type":"timeout_error"}}', end);
    const { response, text } = await streamThrough(first);
    expect(response.status).toBe(200);
    expect(first.requests).toHaveLength(1);
    expect(response.headers.get('x-switchyard-backend')).toBe('good');
    expect(text).toContain('data: [DONE]');
  });

  it.each([true, false])('relays a 400 error event before the first token as the client error it is, blaming no backend (body ended: %s)', async (end) => {
    const first = await erroringStream('{"error":{"code":400,"message":"temperature must be non-negative","type":"BadRequestError","param":"temperature"}}', end);
    const { response, text, good } = await streamThrough(first);
    expect(response.status).toBe(400);
    expect(JSON.parse(text)).toEqual({ error: { message: 'temperature must be non-negative', type: 'invalid_request_error', param: 'temperature', code: 'invalid_request' } });
    expect(good.stats().completed).toBe(0);
  });

  it("renders the admin listener's errors through the same function, and counts them", async () => {
    const good = await sim({ flavor: 'vllm' });
    const gateway = await gatewayWith({
      admin: { token: 'admin-token-0123456789', port: 0 },
      backends: [backendFor('good', good)],
      models: [{ name: 'm', targets: [{ backend: 'good', model: 'Qwen/Qwen3-8B' }] }],
    });
    const missing = await fetch(`${gateway.adminUrl}/admin/nothing-here`, { headers: { authorization: 'Bearer admin-token-0123456789' } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toContain('application/json');
    expect(await missing.json()).toEqual({ error: { message: expect.stringContaining('Unknown URL'), type: 'invalid_request_error', param: null, code: 'unknown_url' } });
    const denied = await fetch(`${gateway.adminUrl}/admin/backends`);
    expect(denied.status).toBe(401);
    const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    expect(metricLines(metrics, 'switchyard_errors_total{').sort()).toEqual([
      'switchyard_errors_total{name="SWY_ERR_ADMIN_TOKEN",origin="gateway"} 1',
      'switchyard_errors_total{name="SWY_ERR_UNKNOWN_ROUTE",origin="gateway"} 1',
    ]);
  });
});
