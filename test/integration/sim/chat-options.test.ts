// The chat options the simulator honours, on both flavours, through the official
// openai SDK (and raw HTTP where the runtime's own shape matters): n, stop,
// logprobs / top_logprobs, response_format (json_object, json_schema), tool_choice
// (incl. the tool-result turn that ends an agent loop) and the context length.

import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import type { SimFlavor } from '../../../src/sim/simulator.ts';
import { afterStream, chatBody, postJson, sseEvents, useSimulator } from './sim-helpers.ts';

function client(url: string): OpenAI {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
}

const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Tell me about rivers.' }];
const weatherTool: OpenAI.ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city'] },
  },
};
const timeTool: OpenAI.ChatCompletionTool = { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } } };

describe.each<SimFlavor>(['vllm', 'llamacpp'])('chat options on the %s flavour', (flavor) => {
  it('n: n different choices, each streamed under its own index', async () => {
    const sim = await useSimulator({ flavor });
    const openai = client(sim.url);
    const completion = await openai.chat.completions.create({ model: 'sim-model', messages, max_tokens: 5, n: 3 });
    expect(completion.choices.map((choice) => choice.index)).toEqual([0, 1, 2]);
    const texts = completion.choices.map((choice) => choice.message.content);
    expect(new Set(texts).size).toBe(3);
    // vLLM sums the choices' tokens; llama.cpp keeps the first task's usage.
    expect(completion.usage?.completion_tokens).toBe(flavor === 'vllm' ? 15 : 5);

    const stream = await openai.chat.completions.create({ model: 'sim-model', messages, max_tokens: 5, n: 3, stream: true });
    const streamed = ['', '', ''];
    const finishes: Array<string | null> = [null, null, null];
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        streamed[choice.index] += choice.delta.content ?? '';
        if (choice.finish_reason !== null) finishes[choice.index] = choice.finish_reason;
      }
    }
    expect(streamed).toEqual(texts);
    expect(finishes).toEqual(['length', 'length', 'length']);
  });

  it('stop: the text ends before the first stop sequence, finish_reason stop', async () => {
    const sim = await useSimulator({ flavor });
    const openai = client(sim.url);
    const free = await openai.chat.completions.create({ model: 'sim-model', messages, max_tokens: 12 });
    const text = free.choices[0]?.message.content ?? '';
    // A word from the middle of the answer: the same prompt gives the same text, so it will be met.
    const stop = text.split(' ')[5] ?? 'x';
    const cut = await openai.chat.completions.create({ model: 'sim-model', messages, max_tokens: 12, stop: [stop, 'never-there'] });
    expect(cut.choices[0]?.finish_reason).toBe('stop');
    expect(cut.choices[0]?.message.content).toBe(text.slice(0, text.indexOf(stop)));
    expect(cut.usage?.completion_tokens).toBeLessThan(12);
    if (flavor === 'vllm') expect((cut.choices[0] as unknown as { stop_reason: string }).stop_reason).toBe(stop);

    const stream = await openai.chat.completions.create({ model: 'sim-model', messages, max_tokens: 12, stop, stream: true });
    let streamed = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      streamed += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(streamed).toBe(cut.choices[0]?.message.content);
    expect(finish).toBe('stop');
  });

  it('logprobs: one entry per token in the runtime shape, top_logprobs alternatives best first', async () => {
    const sim = await useSimulator({ flavor });
    const openai = client(sim.url);
    const completion = await openai.chat.completions.create({ model: 'sim-model', messages, max_tokens: 4, logprobs: true, top_logprobs: 3 });
    const content = completion.choices[0]?.logprobs?.content ?? [];
    expect(content).toHaveLength(4);
    expect(content.map((entry) => entry.token).join('')).toBe(completion.choices[0]?.message.content);
    for (const entry of content) {
      expect(entry.logprob).toBeLessThanOrEqual(0);
      expect(entry.bytes).toEqual([...Buffer.from(entry.token, 'utf8')]);
      expect(entry.top_logprobs).toHaveLength(3);
      const values = entry.top_logprobs.map((alternative) => alternative.logprob);
      expect(values).toEqual([...values].sort((a, b) => b - a));
    }
    const keys = Object.keys(content[0] ?? {});
    expect(keys).toEqual(flavor === 'vllm' ? ['token', 'logprob', 'bytes', 'top_logprobs'] : ['id', 'token', 'bytes', 'logprob', 'top_logprobs']);

    const events = sseEvents(await (await postJson(sim, '/v1/chat/completions', chatBody({ stream: true, logprobs: true, top_logprobs: 1 }))).text());
    const withLogprobs = events.filter((event) => {
      const choice = (event as { choices?: Array<{ logprobs?: { content: unknown[] } | null }> }).choices?.[0];
      return choice?.logprobs?.content?.length === 1;
    });
    expect(withLogprobs).toHaveLength(4);
    await afterStream();

    // Without logprobs, no logprobs: vLLM says null, llama.cpp has no key.
    const plain = (await (await postJson(sim, '/v1/chat/completions', chatBody())).json()) as { choices: Array<Record<string, unknown>> };
    expect(plain.choices[0]?.logprobs ?? null).toBeNull();
    const refused = await postJson(sim, '/v1/chat/completions', chatBody({ top_logprobs: 2 }));
    expect(refused.status).toBe(400);
    if (flavor === 'llamacpp') {
      // oaicompat_chat_params_parse refuses logprobs on a streamed request with tools.
      const withTools = await postJson(sim, '/v1/chat/completions', chatBody({ stream: true, logprobs: true, tools: [weatherTool] }));
      expect(withTools.status).toBe(400);
      expect(((await withTools.json()) as { error: { message: string } }).error.message).toBe('logprobs is not supported with tools + stream');
    }
  });

  it('response_format: valid JSON, json_schema instances carry the required keys with their types', async () => {
    const sim = await useSimulator({ flavor });
    const openai = client(sim.url);
    const schema = {
      type: 'object',
      properties: {
        name: { type: 'string' },
        age: { type: 'integer', minimum: 1, maximum: 120 },
        score: { type: 'number' },
        admin: { type: 'boolean' },
        tags: { type: 'array', items: { type: 'string' } },
        colour: { enum: ['red', 'green'] },
        address: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
      },
      required: ['name', 'age', 'address'],
    };
    const completion = await openai.chat.completions.create({
      model: 'sim-model',
      messages,
      response_format: { type: 'json_schema', json_schema: { name: 'person', schema } },
    });
    expect(completion.choices[0]?.finish_reason).toBe('stop');
    const person = JSON.parse(completion.choices[0]?.message.content ?? '') as Record<string, any>;
    expect(typeof person.name).toBe('string');
    expect(Number.isInteger(person.age) && person.age >= 1 && person.age <= 120).toBe(true);
    expect(typeof person.score).toBe('number');
    expect(typeof person.admin).toBe('boolean');
    expect(person.tags.every((tag: unknown) => typeof tag === 'string')).toBe(true);
    expect(['red', 'green']).toContain(person.colour);
    expect(typeof person.address.city).toBe('string');

    const object = await openai.chat.completions.create({ model: 'sim-model', messages, response_format: { type: 'json_object' } });
    expect(JSON.parse(object.choices[0]?.message.content ?? '')).toEqual(expect.any(Object));

    // Streamed, the fragments join into the same document.
    const stream = await openai.chat.completions.create({ model: 'sim-model', messages, response_format: { type: 'json_object' }, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe(object.choices[0]?.message.content);
    await afterStream();

    // A max_tokens too small for the document cuts it, like a real model: finish length.
    const short = await openai.chat.completions.create({
      model: 'sim-model',
      messages,
      max_tokens: 2,
      response_format: { type: 'json_schema', json_schema: { name: 'person', schema } },
    });
    expect(short.choices[0]?.finish_reason).toBe('length');
  });

  it('tool_choice: none gives text, required and named force a call, auto calls unless the last turn is a tool result', async () => {
    const sim = await useSimulator({ flavor });
    const openai = client(sim.url);
    const tools = [weatherTool, timeTool];
    const none = await openai.chat.completions.create({ model: 'sim-model', messages, tools, tool_choice: 'none', max_tokens: 4 });
    expect(none.choices[0]?.message.tool_calls ?? []).toEqual([]);
    expect(none.choices[0]?.message.content?.length).toBeGreaterThan(0);

    const required = await openai.chat.completions.create({ model: 'sim-model', messages, tools, tool_choice: 'required' });
    expect(required.choices[0]?.finish_reason).toBe('tool_calls');
    const call = required.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === 'function' && call.function.name).toBe('get_weather');
    const args = JSON.parse(call?.type === 'function' ? call.function.arguments : '{}') as Record<string, unknown>;
    expect(typeof args.city).toBe('string');

    const named = await openai.chat.completions.create({ model: 'sim-model', messages, tools, tool_choice: { type: 'function', function: { name: 'get_time' } } });
    const namedCall = named.choices[0]?.message.tool_calls?.[0];
    expect(namedCall?.type === 'function' && namedCall.function.name).toBe('get_time');

    // No tools: tool_choice cannot make a call.
    const noTools = await openai.chat.completions.create({ model: 'sim-model', messages, max_tokens: 3 });
    expect(noTools.choices[0]?.message.tool_calls ?? []).toEqual([]);

    // The agent loop: call, run the tool, send the result back; the model answers in text.
    const first = await openai.chat.completions.create({ model: 'sim-model', messages, tools });
    const firstCall = first.choices[0]?.message.tool_calls?.[0];
    expect(first.choices[0]?.finish_reason).toBe('tool_calls');
    const followUp = await openai.chat.completions.create({
      model: 'sim-model',
      tools,
      max_tokens: 5,
      messages: [
        ...messages,
        { role: 'assistant', content: null, tool_calls: first.choices[0]?.message.tool_calls ?? [] },
        { role: 'tool', tool_call_id: firstCall?.id ?? '', content: '{"celsius": 21}' },
      ],
    });
    expect(followUp.choices[0]?.message.tool_calls ?? []).toEqual([]);
    expect(followUp.choices[0]?.message.content?.split(' ')).toHaveLength(5);
  });
});

describe("the context length, in each runtime's own way", () => {
  it('vLLM refuses prompt + max_tokens over max_model_len with its 400, and a prompt alone over it', async () => {
    const sim = await useSimulator({ flavor: 'vllm', maxModelLen: 64 });
    const over = await postJson(sim, '/v1/chat/completions', chatBody({ max_tokens: 60 }));
    expect(over.status).toBe(400);
    const body = (await over.json()) as { error: Record<string, unknown> };
    expect(body.error).toMatchObject({ type: 'BadRequestError', param: 'max_tokens', code: 400 });
    expect(body.error.message).toMatch(/^'max_tokens' or 'max_completion_tokens' is too large: 60\. This model's maximum context length is 64 tokens/);
    const long = await postJson(sim, '/v1/chat/completions', chatBody({ messages: [{ role: 'user', content: 'x'.repeat(400) }] }));
    expect(long.status).toBe(400);
    expect(((await long.json()) as { error: { param: string } }).error.param).toBe('input_tokens');
  });

  it('llama.cpp refuses only a prompt over the slot context; a large max_tokens fills the slot (as recorded)', async () => {
    const sim = await useSimulator({ flavor: 'llamacpp', maxModelLen: 64 });
    const fits = (await (await postJson(sim, '/v1/chat/completions', chatBody({ max_tokens: 1000 }))).json()) as Record<string, any>;
    expect(fits.choices[0].finish_reason).toBe('length');
    expect(fits.usage.total_tokens).toBe(64);
    const long = await postJson(sim, '/v1/chat/completions', chatBody({ messages: [{ role: 'user', content: 'x'.repeat(400) }] }));
    expect(long.status).toBe(400);
    expect(((await long.json()) as { error: { type: string } }).error.type).toBe('exceed_context_size_error');
  });
});
