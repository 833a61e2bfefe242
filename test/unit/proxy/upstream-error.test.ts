import { describe, expect, it } from 'vitest';
import { normaliseStreamErrorEvent, normaliseUpstreamError } from '../../../src/proxy/upstream-error.ts';

describe('upstream error normalisation', () => {
  it("turns llama.cpp's exceed_context_size_error into 400 context_length_exceeded", () => {
    const body = JSON.stringify({ error: { code: 400, message: 'request (9000 tokens) exceeds the available context size (8192 tokens)', type: 'exceed_context_size_error', n_prompt_tokens: 9000, n_ctx: 8192 } });
    const { error, retryable } = normaliseUpstreamError(400, body, 'llama', 'messages');
    expect(error.toJSON()).toEqual({
      error: { message: 'request (9000 tokens) exceeds the available context size (8192 tokens)', type: 'invalid_request_error', param: 'messages', code: 'context_length_exceeded' },
    });
    expect(error.status).toBe(400);
    expect(retryable).toBe(false);
  });

  it("recognises vLLM's context message and keeps integer codes out", () => {
    const body = JSON.stringify({ error: { message: "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.", type: 'BadRequestError', param: null, code: 400 } });
    const { error } = normaliseUpstreamError(400, body, 'vllm', 'prompt');
    expect(error.code).toBe('context_length_exceeded');
    expect(error.param).toBe('prompt');
  });

  it('passes a vLLM validation error on with its param and a string-or-null code', () => {
    const body = JSON.stringify({ error: { message: 'temperature must be >= 0', type: 'BadRequestError', param: 'temperature', code: 400 } });
    const { error, retryable } = normaliseUpstreamError(400, body, 'vllm', 'messages');
    expect(error.toJSON().error).toEqual({ message: 'temperature must be >= 0', type: 'invalid_request_error', param: 'temperature', code: null });
    expect(retryable).toBe(false);
  });

  it("maps vLLM's {\"error\":\"Unauthorized\"} to a gateway-side credentials error", () => {
    const { error, retryable } = normaliseUpstreamError(401, '{"error":"Unauthorized"}', 'vllm-a', 'messages');
    expect(error.status).toBe(502);
    expect(error.code).toBe('upstream_auth_failed');
    expect(error.message).toContain('vllm-a');
    expect(retryable).toBe(true);
  });

  it('wraps non-JSON bodies and keeps 5xx retryable', () => {
    const { error, retryable } = normaliseUpstreamError(503, '<html>Bad Gateway</html>', 'x', 'messages');
    expect(error.status).toBe(503);
    expect(error.type).toBe('server_error');
    expect(error.message).toContain('<html>Bad Gateway</html>');
    expect(retryable).toBe(true);
  });

  it('reads an in-stream error event', () => {
    const error = normaliseStreamErrorEvent('{"error":{"code":500,"message":"boom","type":"server_error"}}', 'x', 'messages');
    expect(error.status).toBe(500);
    expect(error.toJSON().error.code).toBe('upstream_error');
  });
});
