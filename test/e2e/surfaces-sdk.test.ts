/**
 * The official SDKs on the new surfaces through the gateway in front of a real
 * llama-server, side by side: the backend serving /v1/responses and
 * /v1/messages natively, and the gateway translating them onto its chat
 * completions. Same calls, same checks; the model's words are noise, the
 * protocol is what must hold.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { TestGateway } from '../helpers/gateway.ts';
import { afterStreamCloseMs, Cleanup, PUBLIC_MODEL, startGatewayFor, startServers } from './helpers/e2e.ts';
import type { LlamaServer } from './helpers/llama-server.ts';

const cleanup = new Cleanup();
const modes = {
  native: { surfaces: { responses: 'native', messages: 'native' } },
  translated: { surfaces: { responses: 'translate', messages: 'translate' } },
} as const;
const gateways: Partial<Record<keyof typeof modes, TestGateway>> = {};

beforeAll(async () => {
  // A bias towards the tiny model's end-of-sequence token (id 2) ends turns by themselves, as a real model's do.
  const [server] = (await startServers(1, { slots: 2, ctx: 2048, extraArgs: ['-n', '64', '--logit-bias', '2+3'] }, cleanup)) as [LlamaServer];
  for (const [mode, backend] of Object.entries(modes) as Array<[keyof typeof modes, Record<string, unknown>]>) {
    gateways[mode] = await startGatewayFor({ llama: server }, cleanup, { backend });
  }
});

afterAll(() => cleanup.run());

const pause = () => new Promise((resolve) => setTimeout(resolve, afterStreamCloseMs));

describe.each(Object.keys(modes) as Array<keyof typeof modes>)('official SDKs on Responses and Messages, real llama-server (%s)', (mode) => {
  const openai = () => new OpenAI({ baseURL: (gateways[mode] as TestGateway).baseURL, apiKey: 'unused', maxRetries: 0, timeout: 30_000 });
  const anthropic = () => new Anthropic({ baseURL: (gateways[mode] as TestGateway).url, apiKey: 'unused', maxRetries: 0, timeout: 30_000 });

  it('openai responses.create and a streamed response', async () => {
    const response = await openai().responses.create({ model: PUBLIC_MODEL, input: 'Say hello.', max_output_tokens: 16 });
    expect(response.object).toBe('response');
    expect(response.model).toBe(PUBLIC_MODEL);
    expect(['completed', 'incomplete']).toContain(response.status);
    expect(response.usage?.input_tokens).toBeGreaterThan(0);
    expect(typeof response.output_text).toBe('string');
    await pause();
    const types: string[] = [];
    let text = '';
    for await (const event of await openai().responses.create({ model: PUBLIC_MODEL, input: 'Say hello.', max_output_tokens: 16, stream: true })) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
    }
    expect(types[0]).toBe('response.created');
    expect(['response.completed', 'response.incomplete']).toContain(types.at(-1));
    // The tiny model may end its turn at once (empty output); any text must come inside an announced item.
    if (types.includes('response.output_text.delta')) expect(types.indexOf('response.output_item.added')).toBeLessThan(types.indexOf('response.output_text.delta'));
    expect(typeof text).toBe('string');
    await pause();
  });

  it('anthropic messages.create and messages.stream', async () => {
    const message = await anthropic().messages.create({ model: PUBLIC_MODEL, max_tokens: 16, messages: [{ role: 'user', content: 'Say hello.' }] });
    expect(message.type).toBe('message');
    expect(message.role).toBe('assistant');
    expect(['end_turn', 'max_tokens', 'stop_sequence']).toContain(message.stop_reason);
    expect(message.usage.output_tokens).toBeGreaterThan(0);
    await pause();
    const stream = anthropic().messages.stream({ model: PUBLIC_MODEL, max_tokens: 16, messages: [{ role: 'user', content: 'Say hello.' }] });
    const final = await stream.finalMessage();
    expect(final.type).toBe('message');
    expect(['end_turn', 'max_tokens', 'stop_sequence']).toContain(final.stop_reason);
    await pause();
  });

  it('the translated surfaces say so; the native ones do not', async () => {
    const gateway = gateways[mode] as TestGateway;
    const response = await fetch(`${gateway.baseURL}/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: PUBLIC_MODEL, input: 'hi', max_output_tokens: 4 }),
    });
    expect(response.status).toBe(200);
    await response.text();
    expect(response.headers.get('x-switchyard-translated')).toBe(mode === 'translated' ? 'responses->chat' : null);
    await pause();
  });
});
