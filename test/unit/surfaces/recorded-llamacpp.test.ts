// The translators fed with chat streams recorded from a real llama-server (test/fixtures/llamacpp):
// the official SDKs must accept the result, and it must carry every event type llama-server's own
// /v1/responses and /v1/messages streams carry. Usage is read out of the recorded native answers.
import { readFileSync } from 'node:fs';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { ChatStreamToMessages, messagesUsage } from '../../../src/surfaces/anthropic/translate.ts';
import { ChatStreamToResponses, responsesUsage } from '../../../src/surfaces/responses/translate.ts';
import { answering, parseSse } from './sdk-fetch.ts';

const fixtures = new URL('../../fixtures/llamacpp/', import.meta.url);

function fixtureText(name: string): string {
  return readFileSync(new URL(name, fixtures), 'utf8');
}

function fixtureBody(name: string): Record<string, unknown> {
  return (JSON.parse(fixtureText(name)) as { body: Record<string, unknown> }).body;
}

/** The chunks of a recorded chat stream (`data: {…}` lines, `[DONE]` left out). */
function recordedChunks(name: string): Array<Record<string, unknown>> {
  return fixtureText(name)
    .split('\n')
    .filter((line) => line.startsWith('data: {'))
    .map((line) => JSON.parse(line.slice(6)) as Record<string, unknown>);
}

function recordedEventTypes(name: string): Set<string> {
  return new Set(
    fixtureText(name)
      .split('\n')
      .filter((line) => line.startsWith('event: '))
      .map((line) => line.slice(7)),
  );
}

function contentOf(chunks: Array<Record<string, unknown>>): string {
  let text = '';
  for (const chunk of chunks) {
    const choice = (chunk.choices as Array<{ delta?: { content?: unknown } }>)[0];
    if (typeof choice?.delta?.content === 'string') text += choice.delta.content;
  }
  return text;
}

function finishOf(chunks: Array<Record<string, unknown>>): unknown {
  for (const chunk of chunks) {
    const choice = (chunk.choices as Array<{ finish_reason?: unknown }>)[0];
    if (choice?.finish_reason) return choice.finish_reason;
  }
  return undefined;
}

/** Both recorded streams were cut by max_tokens (the tiny model never stops by itself). */
const streams = ['chat-completion-stream-usage.sse.txt', 'chat-completion-tool-required-stream.sse.txt'];

describe('recorded llama-server chat streams, translated', () => {
  for (const name of streams) {
    it(`${name} -> Responses events the openai SDK accumulates`, async () => {
      const chunks = recordedChunks(name);
      const finish = finishOf(chunks);
      const translator = new ChatStreamToResponses({ id: 'resp_rec', createdAt: 1796287535, model: 'tiny-llama', request: { model: 'tiny-llama', input: 'x', stream: true } });
      let sse = translator.start();
      for (const chunk of chunks) sse += translator.push(chunk);
      sse += translator.finish();
      const types = new Set(parseSse(sse).map((event) => event.event));
      // llama-server's native stream ends with response.completed even when max_tokens cut it; ours says so
      const terminal = finish === 'length' ? 'response.incomplete' : 'response.completed';
      for (const type of recordedEventTypes('responses-stream.sse.txt')) expect(types).toContain(type === 'response.completed' ? terminal : type);
      expect(translator.usage?.completion_tokens).toBeGreaterThan(0);

      const { fetch } = answering(sse, 'text/event-stream');
      const client = new OpenAI({ apiKey: 'k', baseURL: 'http://gateway.test/v1', fetch, maxRetries: 0 });
      const final = await client.responses.stream({ model: 'tiny-llama', input: 'x' }).finalResponse();
      expect(final.output_text).toBe(contentOf(chunks));
      expect(final.status).toBe(finish === 'length' ? 'incomplete' : 'completed');
    });

    it(`${name} -> Messages events the Anthropic SDK accumulates`, async () => {
      const chunks = recordedChunks(name);
      const finish = finishOf(chunks);
      const translator = new ChatStreamToMessages({ id: 'msg_rec', model: 'tiny-llama' });
      let sse = translator.start();
      for (const chunk of chunks) sse += translator.push(chunk);
      sse += translator.finish();
      const types = new Set(parseSse(sse).map((event) => event.event));
      for (const type of recordedEventTypes('messages-stream.sse.txt')) expect(types).toContain(type);

      const { fetch } = answering(sse, 'text/event-stream');
      const client = new Anthropic({ apiKey: 'k', baseURL: 'http://gateway.test', fetch, maxRetries: 0 });
      const final = await client.messages.stream({ model: 'tiny-llama', max_tokens: 64, messages: [{ role: 'user', content: 'x' }] }).finalMessage();
      expect(final.content).toEqual([{ type: 'text', text: contentOf(chunks) }]);
      expect(final.stop_reason).toBe(finish === 'length' ? 'max_tokens' : 'end_turn');
      expect(final.usage.output_tokens).toBe(translator.usage?.completion_tokens);
    });
  }

  it("reads usage out of llama-server's native /v1/responses and /v1/messages answers", () => {
    expect(responsesUsage(fixtureBody('responses.json'))).toEqual({ prompt_tokens: 56, completion_tokens: 8, total_tokens: 64, cached_tokens: 0 });
    // llama.cpp counts cached prompt tokens apart from input_tokens, as Anthropic does
    expect(messagesUsage(fixtureBody('messages.json'))).toEqual({ prompt_tokens: 56, completion_tokens: 8, total_tokens: 64, cached_tokens: 55 });
  });
});
