/**
 * A body nested thousands of levels deep is the client's fault: 400 in OpenAI's
 * shape on every path it can reach (cache key, prompt estimate), never a 500.
 */
import { describe, expect, it } from 'vitest';
import { backendFor, closedAfterEach, post } from '../../helpers/gateway.ts';

const { sim, gateway: gatewayWith } = closedAfterEach();

describe('deeply nested JSON', () => {
  it('gets 400 invalid_value where the gateway must read it (cache key, prompt estimate), and is never a gateway 5xx', async () => {
    const simulator = await sim({ flavor: 'vllm' });
    const gateway = await gatewayWith({ backends: [backendFor('v', simulator)], models: [{ name: 'm', targets: [{ backend: 'v', model: 'Qwen/Qwen3-8B' }] }] });
    const deepArray = `${'['.repeat(6000)}1${']'.repeat(6000)}`;
    const deepObject = `${'{"a":'.repeat(6000)}1${'}'.repeat(6000)}`;
    const cases: Array<[string, string]> = [
      ['/v1/chat/completions', `{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}],"x":${deepObject}}`],
      ['/v1/completions', `{"model":"m","prompt":"x","temperature":0,"x":${deepArray}}`],
      ['/v1/embeddings', `{"model":"m","input":${deepArray}}`],
    ];
    for (const [path, body] of cases) {
      const answer = await post(`${gateway.url}${path}`, body);
      expect(answer.status, `${path}: ${answer.text.slice(0, 200)}`).toBe(400);
      expect(answer.json.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_value' });
      expect(answer.json.error.message).toMatch(/nests JSON/);
    }
    // Not cacheable: relayed for the runtime to judge; whatever happens, not a 5xx of the gateway's own.
    const relayed = await post(
      `${gateway.url}/v1/chat/completions`,
      `{"model":"m","temperature":0.9,"messages":[{"role":"user","content":${'['.repeat(20000)}1${']'.repeat(20000)}}]}`,
    );
    expect(relayed.status, relayed.text.slice(0, 200)).toBeLessThan(500);
  });
});
