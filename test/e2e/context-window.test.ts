/**
 * Issue 13, item 3 against a real llama-server with a 512-token window: the
 * gateway's context check refused requests the server serves. The server's own
 * tokenizer (`/apply-template` + `/tokenize`) gives the real prompt size, so the
 * test shows the estimate over the window and the real count under it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { TestGateway } from '../helpers/gateway.ts';
import { Cleanup, postJson, PUBLIC_MODEL, startGatewayFor, startServers } from './helpers/e2e.ts';
import type { LlamaServer } from './helpers/llama-server.ts';
import { estimatePromptTokens } from '../../src/proxy/estimate.ts';

const CTX = 512;
const cleanup = new Cleanup();
let server: LlamaServer;
let gateway: TestGateway;

beforeAll(async () => {
  [server] = (await startServers(1, { slots: 1, ctx: CTX }, cleanup)) as [LlamaServer];
  gateway = await startGatewayFor({ llama: server }, cleanup);
});

afterAll(() => cleanup.run());

/** The prompt tokens the server will count for these chat messages (its chat template and tokenizer). */
async function realPromptTokens(messages: unknown): Promise<number> {
  const rendered = (await (await postJson(server.url, '/apply-template', { messages })).json()) as { prompt: string };
  const tokens = (await (await postJson(server.url, '/tokenize', { content: rendered.prompt, add_special: true })).json()) as { tokens: unknown[] };
  return tokens.tokens.length;
}

describe('context window: the gateway refuses only what the server would refuse', () => {
  it('case 2: "hello " * 400 — over the window by the estimate, under it for the real tokenizer — is served', async () => {
    const messages = [{ role: 'user', content: 'hello '.repeat(400) }];
    const real = await realPromptTokens(messages);
    expect(estimatePromptTokens({ messages })).toBeGreaterThan(CTX);
    expect(real).toBeLessThan(CTX);
    const response = await postJson(gateway.baseURL, '/chat/completions', { model: PUBLIC_MODEL, messages, max_tokens: 8 });
    const body = (await response.json()) as { usage: { prompt_tokens: number } };
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(body.usage.prompt_tokens).toBe(real);
  });

  it('case 1: no max_tokens and a prompt that leaves room: served (the 256-token default is not counted)', async () => {
    const messages = [{ role: 'user', content: 'hello '.repeat(280) }];
    const real = await realPromptTokens(messages);
    expect(real + 256).toBeGreaterThan(CTX);
    const response = await postJson(gateway.baseURL, '/chat/completions', { model: PUBLIC_MODEL, messages });
    const body = (await response.json()) as { usage: { prompt_tokens: number; completion_tokens: number } };
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(body.usage.prompt_tokens).toBe(real);
    expect(body.usage.prompt_tokens + body.usage.completion_tokens).toBeLessThanOrEqual(CTX);
  });

  it('a prompt over the window for real is refused by the server, in the OpenAI shape', async () => {
    const messages = [{ role: 'user', content: 'hello '.repeat(500) }];
    expect(await realPromptTokens(messages)).toBeGreaterThan(CTX);
    const response = await postJson(gateway.baseURL, '/chat/completions', { model: PUBLIC_MODEL, messages, max_tokens: 8 });
    const body = (await response.json()) as { error: { message: string; code: string; param: string } };
    expect(response.status).toBe(400);
    expect(body.error).toMatchObject({ code: 'context_length_exceeded', param: 'messages' });
    expect(body.error.message).toMatch(/exceeds the available context size \(512 tokens\)/);
  });
});
