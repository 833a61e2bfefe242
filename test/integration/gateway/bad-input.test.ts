/**
 * Every bad input gets its documented OpenAI-shaped error, by raw HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { backendFor, post, startSim, startTestGateway, type TestGateway } from '../../helpers/gateway.ts';

let sim: Simulator;
let gateway: TestGateway;

beforeAll(async () => {
  sim = await startSim({ flavor: 'llamacpp', maxModelLen: 256 });
  gateway = await startTestGateway({
    server: { bodyLimitBytes: 64 * 1024 },
    backends: [backendFor('llama', sim)],
    models: [{ name: 'm', targets: [{ backend: 'llama', model: 'qwen3-8b-q4' }] }],
  });
});

afterAll(async () => {
  await gateway?.close();
  await sim?.close();
});

function expectOpenAIError(json: unknown, type: string, code: string | null, param: string | null) {
  expect(json).toEqual({ error: { message: expect.any(String), type, param, code } });
}

const chat = () => `${gateway.baseURL}/chat/completions`;
const user = [{ role: 'user', content: 'hi' }];

describe('bad input', () => {
  it('malformed JSON -> 400 invalid_json', async () => {
    const response = await post(chat(), '{"model": "m", "messages": [');
    expect(response.status).toBe(400);
    expectOpenAIError(response.json, 'invalid_request_error', 'invalid_json', null);
  });

  it('a JSON array or empty body -> 400 invalid_json', async () => {
    expect((await post(chat(), '[1,2]')).status).toBe(400);
    const empty = await post(chat(), '');
    expect(empty.status).toBe(400);
    expectOpenAIError(empty.json, 'invalid_request_error', 'invalid_json', null);
  });

  it.each([
    ['missing model', { messages: user }, 'model'],
    ['model not a string', { model: 42, messages: user }, 'model'],
    ['missing messages', { model: 'm' }, 'messages'],
    ['messages not an array', { model: 'm', messages: 'hi' }, 'messages'],
    ['empty messages', { model: 'm', messages: [] }, 'messages'],
    ['message without role', { model: 'm', messages: [{ content: 'x' }] }, 'messages[0].role'],
    ['stream not a boolean', { model: 'm', messages: user, stream: 'yes' }, 'stream'],
  ])('chat: %s -> 400 with param', async (_name, body, param) => {
    const response = await post(chat(), JSON.stringify(body));
    expect(response.status).toBe(400);
    expectOpenAIError(response.json, 'invalid_request_error', 'invalid_value', param);
  });

  it('completions without prompt and embeddings without input -> 400 with param', async () => {
    const completion = await post(`${gateway.baseURL}/completions`, JSON.stringify({ model: 'm' }));
    expect(completion.status).toBe(400);
    expectOpenAIError(completion.json, 'invalid_request_error', 'invalid_value', 'prompt');
    const embedding = await post(`${gateway.baseURL}/embeddings`, JSON.stringify({ model: 'm', input: 5 }));
    expect(embedding.status).toBe(400);
    expectOpenAIError(embedding.json, 'invalid_request_error', 'invalid_value', 'input');
  });

  it('unknown model -> 404 model_not_found', async () => {
    const response = await post(chat(), JSON.stringify({ model: 'gpt-9', messages: user }));
    expect(response.status).toBe(404);
    expectOpenAIError(response.json, 'invalid_request_error', 'model_not_found', 'model');
    expect(response.json.error.message).toContain('gpt-9');
  });

  it('body over the limit -> 413 request_too_large', async () => {
    const big = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x'.repeat(70 * 1024) }] });
    const response = await post(chat(), big);
    expect(response.status).toBe(413);
    expectOpenAIError(response.json, 'invalid_request_error', 'request_too_large', null);
  });

  it('unknown route -> 404 unknown_url, for GET and POST', async () => {
    const response = await post(`${gateway.baseURL}/chat/complete`, '{}');
    expect(response.status).toBe(404);
    expectOpenAIError(response.json, 'invalid_request_error', 'unknown_url', null);
    const get = await fetch(`${gateway.url}/v2/anything`);
    expect(get.status).toBe(404);
    expectOpenAIError(await get.json(), 'invalid_request_error', 'unknown_url', null);
  });

  it('accepts a JSON body sent as form encoding (curl -d without a content type)', async () => {
    const response = await post(chat(), JSON.stringify({ model: 'm', messages: user, max_tokens: 2 }), { 'content-type': 'application/x-www-form-urlencoded' });
    expect(response.status).toBe(200);
  });

  it("prompt over the backend's context -> 400 context_length_exceeded, stream or not", async () => {
    const long = [{ role: 'user', content: 'word '.repeat(2000) }];
    for (const stream of [false, true]) {
      const response = await post(chat(), JSON.stringify({ model: 'm', messages: long, stream }));
      expect(response.status).toBe(400);
      expectOpenAIError(response.json, 'invalid_request_error', 'context_length_exceeded', 'messages');
    }
  });

  it('keeps serving after all of the above', async () => {
    const response = await post(chat(), JSON.stringify({ model: 'm', messages: user, max_tokens: 3 }));
    expect(response.status).toBe(200);
    expect((response.json as unknown as { model: string }).model).toBe('m');
  });
});
