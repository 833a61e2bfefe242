/** What of an upstream error message a client may see (src/proxy/sanitise.ts). */
import { describe, expect, it } from 'vitest';
import { maxMessageChars, redactSecrets, registerSecrets, sanitiseMessage, upstreamDetail } from '../../../src/proxy/sanitise.ts';

const fallback = 'Backend answered HTTP 500';

describe('sanitiseMessage', () => {
  it('keeps ordinary runtime messages as they are', () => {
    for (const message of [
      'max_tokens must be at least 1, got 0.',
      "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion).",
      'the request exceeds the available context size, try increasing it',
      "1 validation error:\n  {'type': 'missing', 'loc': ('body', 'messages'), 'msg': 'Field required', 'input': {'model': 'x'}}",
      'The model `qwen3` does not exist.',
    ]) {
      expect(sanitiseMessage(message, fallback)).toBe(message);
    }
  });

  it('drops a Python traceback, keeping what came before it or the exception it raised', () => {
    const trace = `Traceback (most recent call last):
  File "/usr/lib/python3.12/site-packages/vllm/entrypoints/openai/api_server.py", line 612, in create_chat_completion
    generator = await handler.create_chat_completion(request, raw_request)
  File "/opt/app/serving_chat.py", line 88, in create_chat_completion
    raise ValueError("bad tool schema")
ValueError: bad tool schema`;
    expect(sanitiseMessage(trace, fallback)).toBe('ValueError: bad tool schema');
    expect(sanitiseMessage(`Internal error while sampling.\n${trace}`, fallback)).toBe('Internal error while sampling.');
  });

  it('drops JavaScript and native stack frames', () => {
    const message =
      'TypeError: cannot read properties of undefined\n    at handle (/srv/app/server.js:12:5)\n    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)';
    expect(sanitiseMessage(message, fallback)).toBe('TypeError: cannot read properties of undefined');
  });

  it('turns an HTML error page into its title, without internal hosts', () => {
    const page =
      '<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1><p>upstream db.internal:5432 refused; see http://10.0.0.3:8000/status</p><hr><center>nginx/1.25.3</center></body></html>';
    const clean = sanitiseMessage(page, fallback);
    expect(clean).toBe('502 Bad Gateway');
    const noTitle = sanitiseMessage('<html><body><p>upstream db.internal:5432 refused; see http://10.0.0.3:8000/status</p></body></html>', fallback);
    expect(noTitle).toBe('upstream [host] refused; see [url]');
  });

  it('hides internal URLs, host:port pairs, IP addresses and source paths', () => {
    const message = 'connect to redis-0.redis.svc.cluster.local:6379 failed (10.1.2.3), from /opt/app/worker.py:42, see https://grafana.internal/d/abc';
    const clean = sanitiseMessage(message, fallback);
    for (const leak of ['redis-0', '6379', '10.1.2.3', '/opt/app', 'grafana.internal']) expect(clean).not.toContain(leak);
    expect(clean).toContain('[host]');
  });

  it('never shows a configured secret or a bearer credential', () => {
    registerSecrets(['upstream-secret-key-0123456789']);
    const echoed = 'Unauthorized. Headers were: {"authorization": "Bearer upstream-secret-key-0123456789", "x-api-key": "upstream-secret-key-0123456789"}';
    const clean = sanitiseMessage(echoed, fallback);
    expect(clean).not.toContain('upstream-secret-key-0123456789');
    expect(sanitiseMessage('token Bearer abcdefghijklmnop rejected', fallback)).toBe('token Bearer [redacted] rejected');
    expect(redactSecrets('key sk-proj-abcdefghijklmnopqrstuv')).toBe('key [redacted]');
  });

  it('bounds the message, and falls back when nothing is left', () => {
    const long = sanitiseMessage('x'.repeat(2_000_000), fallback);
    expect(long.length).toBe(maxMessageChars);
    expect(sanitiseMessage('<html><body></body></html>', fallback)).toBe(fallback);
    expect(sanitiseMessage('', fallback)).toBe(fallback);
  });
});

describe('upstreamDetail', () => {
  it('keeps the detail for the debug log, bounded and without secrets', () => {
    registerSecrets(['another-secret-value-42']);
    const detail = upstreamDetail(`Traceback ... another-secret-value-42 ${'y'.repeat(100_000)}`);
    expect(detail).toContain('Traceback');
    expect(detail).not.toContain('another-secret-value-42');
    expect(detail.length).toBeLessThanOrEqual(4097);
  });
});
