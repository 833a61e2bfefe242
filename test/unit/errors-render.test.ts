/** One render function for every error, on every listener; surfaces can bring their own shape. */
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { installErrorHandlers } from '../../src/api/error-reply.ts';
import { gatewayError, renderError, renderErrorEvent, type ErrorRenderer, type GatewayError } from '../../src/errors.ts';

describe('renderError', () => {
  it('renders the OpenAI shape by default, with retry-after when the error has one', () => {
    const rendered = renderError(gatewayError('SWY_ERR_NO_BACKEND', { retryAfterSeconds: 5 }));
    expect(rendered.status).toBe(503);
    expect(rendered.headers).toEqual({ 'content-type': 'application/json', 'retry-after': '5' });
    expect(JSON.parse(rendered.body)).toEqual({ error: { message: expect.any(String), type: 'server_error', param: null, code: 'no_backend_available' } });
  });

  it('turns anything that is not a GatewayError into internal_error', () => {
    const rendered = renderError(new RangeError('boom'));
    expect(rendered.status).toBe(500);
    expect(JSON.parse(rendered.body).error.code).toBe('internal_error');
    expect(rendered.body).not.toContain('boom');
  });

  it('lets a surface bring its own shape', () => {
    const anthropicLike: ErrorRenderer = {
      response: (error) => ({
        status: error.status,
        body: JSON.stringify({ type: 'error', error: { type: error.type, message: error.message } }),
        headers: { 'content-type': 'application/json' },
      }),
      streamEvent: (error) => `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: error.type, message: error.message } })}\n\n`,
    };
    const error = gatewayError('SWY_ERR_MODEL_NOT_FOUND');
    expect(JSON.parse(renderError(error, anthropicLike).body)).toEqual({ type: 'error', error: { type: 'invalid_request_error', message: error.message } });
    expect(renderErrorEvent(error, anthropicLike)).toMatch(/^event: error\n/);
  });

  it('keeps the catalogue name and origin on the instance', () => {
    const error = gatewayError('SWY_ERR_UPSTREAM', { origin: 'upstream', status: 503 });
    expect(error.errorName).toBe('SWY_ERR_UPSTREAM');
    expect(error.origin).toBe('upstream');
    expect(error.status).toBe(503);
    expect(gatewayError('SWY_ERR_OVERLOADED').origin).toBe('gateway');
  });
});

describe('installErrorHandlers', () => {
  it('logs a 5xx, reports it to the observer and renders it with the route surface', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const app = Fastify({
      logger: { level: 'info', stream: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } },
    });
    const seen: GatewayError[] = [];
    installErrorHandlers(app, (error) => seen.push(error));
    const plain: ErrorRenderer = {
      response: (error) => ({ status: error.status, body: `plain ${error.code}`, headers: { 'content-type': 'text/plain' } }),
      streamEvent: () => '',
    };
    app.get('/bug', async () => {
      throw new TypeError('secret detail');
    });
    app.get('/plain', { config: { errorRenderer: plain } }, async () => {
      throw gatewayError('SWY_ERR_INVALID_PARAM');
    });
    const bug = await app.inject({ method: 'GET', url: '/bug' });
    expect(bug.statusCode).toBe(500);
    expect(bug.json()).toEqual({ error: { message: expect.any(String), type: 'server_error', param: null, code: 'internal_error' } });
    expect(bug.body).not.toContain('secret detail');
    expect(lines.find((line) => line.msg === 'unhandled error')).toMatchObject({ level: 50, errorName: 'SWY_ERR_INTERNAL', origin: 'gateway', status: 500 });
    const plainAnswer = await app.inject({ method: 'GET', url: '/plain' });
    expect(plainAnswer.statusCode).toBe(400);
    expect(plainAnswer.body).toBe('plain invalid_value');
    const missing = await app.inject({ method: 'GET', url: '/nowhere' });
    expect(missing.json().error.code).toBe('unknown_url');
    expect(seen.map((error) => error.errorName)).toEqual(['SWY_ERR_INTERNAL', 'SWY_ERR_INVALID_PARAM', 'SWY_ERR_UNKNOWN_ROUTE']);
    await app.close();
  });
});
