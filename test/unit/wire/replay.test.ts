import { ChatCompletionStream } from 'openai/lib/ChatCompletionStream';
import { Stream } from 'openai/streaming';
import { describe, expect, it } from 'vitest';
import type { CacheEntry } from '../../../src/cache/entry.ts';
import { StreamCacheRecorder } from '../../../src/cache/recorder.ts';
import { replayAsSse, splitText } from '../../../src/wire/replay.ts';
import { dataOf, SseSplitter } from '../../../src/wire/sse.ts';

const usage = { prompt_tokens: 12, completion_tokens: 30, total_tokens: 42 };

const chatEntry: CacheEntry = {
  kind: 'chat',
  createdAt: 1_700_000_000_000,
  usage,
  body: JSON.stringify({
    id: 'chatcmpl-abc',
    object: 'chat.completion',
    created: 1_700_000_000,
    model: 'stored-name',
    system_fingerprint: 'fp_1',
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: 'The weather in Paris is sunny with a light breeze, 21 degrees. 🌤️ Enjoy!',
          reasoning_content: 'The user asks about the weather; call the tool first and then answer.',
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris","unit":"celsius","days":1}' } }],
        },
        logprobs: null,
        finish_reason: 'tool_calls',
      },
    ],
    usage,
  }),
};

function events(sse: string): string[] {
  const splitter = new SseSplitter();
  const all = splitter.push(sse);
  expect(splitter.rest()).toBe('');
  return all.map((event) => dataOf(event) ?? '');
}

async function sdkChunks(sse: string): Promise<unknown[]> {
  const stream = Stream.fromSSEResponse<unknown>(new Response(sse), new AbortController());
  const chunks: unknown[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

describe('replaying a cached answer as SSE', () => {
  it('is accumulated by the openai SDK into the cached answer, with usage when asked', async () => {
    const sse = replayAsSse(chatEntry, { includeUsage: true, publicModel: 'public-model' });
    const stream = Stream.fromSSEResponse(new Response(sse), new AbortController());
    const runner = ChatCompletionStream.fromReadableStream(stream.toReadableStream());
    const final = await runner.finalChatCompletion();
    const original = JSON.parse(chatEntry.body);
    expect(final.id).toBe('chatcmpl-abc');
    expect(final.model).toBe('public-model');
    expect(final.usage).toEqual(usage);
    expect(final.choices[0]?.message.content).toBe(original.choices[0].message.content);
    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
    expect(final.choices[0]?.message.tool_calls?.[0]).toMatchObject({
      id: 'call_1',
      type: 'function',
      function: { name: 'get_weather', arguments: '{"city":"Paris","unit":"celsius","days":1}' },
    });
  });

  it('has the exact OpenAI chunk shape', () => {
    const payloads = events(replayAsSse(chatEntry, { includeUsage: true, publicModel: 'p' }));
    expect(payloads.at(-1)).toBe('[DONE]');
    const chunks = payloads.slice(0, -1).map((payload) => JSON.parse(payload));
    for (const chunk of chunks) {
      expect(chunk).toMatchObject({ id: 'chatcmpl-abc', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'p', system_fingerprint: 'fp_1' });
    }
    expect(chunks[0].choices[0]).toEqual({ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null });
    expect(chunks[0].usage).toBeNull();
    const content = chunks.map((chunk) => chunk.choices[0]?.delta?.content ?? '').join('');
    const reasoning = chunks.map((chunk) => chunk.choices[0]?.delta?.reasoning_content ?? '').join('');
    expect(content).toBe(JSON.parse(chatEntry.body).choices[0].message.content);
    expect(reasoning).toContain('call the tool first');
    expect(chunks.filter((chunk) => chunk.choices[0]?.delta?.content).length).toBeGreaterThan(1);
    const finish = chunks.at(-2);
    expect(finish.choices[0]).toEqual({ index: 0, delta: {}, logprobs: null, finish_reason: 'tool_calls' });
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage });
  });

  it('omits the usage chunk and usage fields unless asked', async () => {
    const sse = replayAsSse(chatEntry, { includeUsage: false, publicModel: 'p' });
    expect(sse).not.toContain('"usage"');
    const chunks = (await sdkChunks(sse)) as Array<{ choices: unknown[] }>;
    expect(chunks.every((chunk) => chunk.choices.length === 1)).toBe(true);
  });

  it('replays completions as text_completion chunks', async () => {
    const entry: CacheEntry = {
      kind: 'completion',
      createdAt: 0,
      usage,
      body: JSON.stringify({
        id: 'cmpl-1',
        object: 'text_completion',
        created: 5,
        model: 'x',
        choices: [{ index: 0, text: 'Once upon a time there was a gateway that cached answers.', logprobs: null, finish_reason: 'length' }],
        usage,
      }),
    };
    const chunks = (await sdkChunks(replayAsSse(entry, { includeUsage: true, publicModel: 'p' }))) as Array<{
      object: string;
      choices: Array<{ text: string; finish_reason: string | null }>;
      usage?: unknown;
    }>;
    expect(chunks.every((chunk) => chunk.object === 'text_completion')).toBe(true);
    expect(chunks.flatMap((chunk) => chunk.choices.map((choice) => choice.text)).join('')).toBe('Once upon a time there was a gateway that cached answers.');
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe('length');
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage });
  });

  it('refuses embeddings', () => {
    expect(() => replayAsSse({ kind: 'embedding', body: '{}', usage: undefined, createdAt: 0 }, { includeUsage: false, publicModel: 'p' })).toThrow();
  });

  it('splits text into a few pieces without breaking surrogate pairs', () => {
    expect(splitText('', 4)).toEqual([]);
    expect(splitText('short', 4)).toEqual(['short']);
    const text = '😀'.repeat(40);
    const parts = splitText(text, 4);
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.join('')).toBe(text);
    for (const part of parts) expect(part.length % 2).toBe(0);
  });
});

describe('StreamCacheRecorder', () => {
  it('turns a relayed stream into an entry that replays to the same answer', () => {
    const recorder = new StreamCacheRecorder('chat', 'public-model', 100_000);
    for (const payload of events(replayAsSse(chatEntry, { includeUsage: true, publicModel: 'public-model' }))) recorder.add(payload);
    const entry = recorder.entry(undefined, 123);
    expect(entry).toBeDefined();
    const rebuilt = JSON.parse(entry?.body ?? '{}');
    const original = JSON.parse(chatEntry.body);
    expect(rebuilt.model).toBe('public-model');
    expect(rebuilt.choices[0].message).toEqual(original.choices[0].message);
    expect(entry?.usage).toEqual(usage);
    expect(entry?.createdAt).toBe(123);
  });

  it('stores nothing for a stream that failed, was cut or grew too large', () => {
    const payloads = events(replayAsSse(chatEntry, { includeUsage: false, publicModel: 'p' }));
    const cut = new StreamCacheRecorder('chat', 'p', 100_000);
    for (const payload of payloads.slice(0, 3)) cut.add(payload);
    expect(cut.entry()).toBeUndefined();
    const failed = new StreamCacheRecorder('chat', 'p', 100_000);
    for (const payload of payloads.slice(0, -1)) failed.add(payload);
    failed.add('{"error":{"message":"boom"}}');
    failed.add('[DONE]');
    expect(failed.entry()).toBeUndefined();
    const small = new StreamCacheRecorder('chat', 'p', 100);
    for (const payload of payloads) small.add(payload);
    expect(small.entry()).toBeUndefined();
  });
});
