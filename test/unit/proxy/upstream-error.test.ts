import { describe, expect, it } from 'vitest';
import { streamEventFailure, upstreamFailure } from '../../../src/proxy/upstream-error.ts';

describe('upstream error normalisation', () => {
  it("turns llama.cpp's exceed_context_size_error into 400 context_length_exceeded", () => {
    const body = JSON.stringify({
      error: {
        code: 400,
        message: 'request (9000 tokens) exceeds the available context size (8192 tokens)',
        type: 'exceed_context_size_error',
        n_prompt_tokens: 9000,
        n_ctx: 8192,
      },
    });
    const failure = upstreamFailure(400, body, 'llama', 'messages');
    const error = failure.clientError;
    expect(error.toJSON()).toEqual({
      error: {
        message: 'request (9000 tokens) exceeds the available context size (8192 tokens)',
        type: 'invalid_request_error',
        param: 'messages',
        code: 'context_length_exceeded',
      },
    });
    expect(error.status).toBe(400);
    expect(error.errorName).toBe('SWY_ERR_CONTEXT_LENGTH');
    expect(error.origin).toBe('upstream');
    expect(failure.retryable).toBe(false);
    expect(failure.backendFault).toBe(false);
  });

  it("recognises vLLM's context message and keeps integer codes out", () => {
    const body = JSON.stringify({
      error: { message: "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.", type: 'BadRequestError', param: null, code: 400 },
    });
    const error = upstreamFailure(400, body, 'vllm', 'prompt').clientError;
    expect(error.code).toBe('context_length_exceeded');
    expect(error.param).toBe('prompt');
  });

  it('passes a vLLM validation error on with its param and a string code (README promises a string)', () => {
    const body = JSON.stringify({ error: { message: 'temperature must be >= 0', type: 'BadRequestError', param: 'temperature', code: 400 } });
    const failure = upstreamFailure(400, body, 'vllm', 'messages');
    expect(failure.clientError.toJSON().error).toEqual({ message: 'temperature must be >= 0', type: 'invalid_request_error', param: 'temperature', code: 'invalid_request' });
    expect(failure.clientError.errorName).toBe('SWY_ERR_UPSTREAM_REJECTED');
    expect(failure.retryable).toBe(false);
    expect(failure.backendFault).toBe(false);
  });

  it('maps vLLM\'s {"error":"Unauthorized"} to a gateway-side credentials error', () => {
    const failure = upstreamFailure(401, '{"error":"Unauthorized"}', 'vllm-a', 'messages');
    expect(failure.clientError.status).toBe(502);
    expect(failure.clientError.code).toBe('upstream_auth_failed');
    expect(failure.clientError.message).toContain('vllm-a');
    expect(failure.retryable).toBe(true);
    expect(failure.backendFault).toBe(true);
  });

  it("keeps an upstream 429 as the upstream's, not as a gateway refusal", () => {
    const failure = upstreamFailure(429, '{"error":{"message":"busy","type":"rate_limit_error"}}', 'x', 'messages', '3');
    expect(failure.clientError.errorName).toBe('SWY_ERR_UPSTREAM_RATE_LIMITED');
    expect(failure.clientError.origin).toBe('upstream');
    expect(failure.clientError.status).toBe(429);
    expect(failure.retryAfter).toBe('3');
    expect(failure.retryable).toBe(true);
  });

  it('wraps non-JSON bodies and keeps 5xx retryable', () => {
    const failure = upstreamFailure(503, '<html>Bad Gateway</html>', 'x', 'messages');
    expect(failure.clientError.status).toBe(503);
    expect(failure.clientError.type).toBe('server_error');
    expect(failure.retryable).toBe(true);
    expect(failure.backendFault).toBe(true);
  });

  it('reads an in-stream error event', () => {
    const failure = streamEventFailure('{"error":{"code":500,"message":"boom","type":"server_error"}}', 'x', 'messages');
    expect(failure.clientError.status).toBe(500);
    expect(failure.clientError.toJSON().error.code).toBe('upstream_error');
    expect(failure.retryable).toBe(true);
  });

  it('judges a 408 the same in a stream event as in a response (both retryable)', () => {
    const event = streamEventFailure('{"error":{"code":408,"message":"request timed out","type":"timeout"}}', 'x', 'messages');
    const response = upstreamFailure(408, '{"error":{"code":408,"message":"request timed out","type":"timeout"}}', 'x', 'messages');
    expect(event.retryable).toBe(true);
    expect(response.retryable).toBe(true);
    expect(event.backendFault).toBe(response.backendFault);
  });
});
