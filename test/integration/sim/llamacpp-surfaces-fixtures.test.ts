// The llama.cpp flavour's Responses, Messages, count_tokens, rerank and chat-option
// answers against the ones recorded from a real llama-server (test/fixtures/llamacpp,
// recorded by test/e2e/tools/record-llamacpp-surfaces.ts): statuses, key headers, body
// shapes key by key, and streams event type by event type.
//
// Not replayed, on purpose: `*-tool-required*`, `messages-tool-any*` (the tiny recorded model has no
// tool-capable template and answers text; the simulator calls the tool as a real model would - those
// shapes follow llama.cpp's source, see surfaces-sdk.test.ts) and `chat-completion-json-schema` (the
// tiny model fails any grammar under jinja with a 400; the simulator answers like the `--no-jinja`
// recording, which is replayed below).

import { describe, expect, it } from 'vitest';
import { expectHeaders, namedEvents, replay, shape } from './fixture-replay.ts';
import { sseEvents } from './sim-helpers.ts';

describe('llama.cpp flavour: Responses, Messages and rerank against a real llama-server', () => {
  it.each([
    ['responses'],
    ['responses-items'],
    ['responses-tool-result-turn'],
    ['responses-input-tokens'],
    ['messages'],
    ['messages-system-blocks'],
    ['messages-tool-result-turn'],
    ['messages-no-max-tokens'],
    ['messages-count-tokens'],
    ['error-responses-context-exceeded'],
    ['error-responses-context-exceeded-stream'],
    ['error-messages-context-exceeded'],
    ['error-messages-context-exceeded-stream'],
    ['rerank'],
    ['rerank-tei'],
  ])('%s: same status, headers and body shape', async (name) => {
    const { fixture, response, text } = await replay(name);
    expect(response.status).toBe(fixture.status);
    expectHeaders(response, fixture);
    expect(shape(JSON.parse(text))).toEqual(shape(fixture.body));
  });

  it.each([
    ['error-responses-missing-input', {}],
    ['error-responses-previous-response-id', {}],
    ['error-messages-missing-messages', {}],
    ['error-messages-malformed-json', {}],
    ['error-rerank-missing-query', {}],
    ['error-rerank-not-enabled', { reranking: false }],
  ] as const)('%s: the same error, word for word', async (name, options) => {
    const { fixture, response, text } = await replay(name, options);
    expect(response.status).toBe(fixture.status);
    expectHeaders(response, fixture);
    expect(JSON.parse(text)).toEqual(fixture.body);
  });

  it.each([['responses-stream'], ['messages-stream']])('%s: the same events, in the same order, with the same shapes', async (name) => {
    const { fixture, response, text } = await replay(name);
    expect(response.status).toBe(200);
    expectHeaders(response, fixture);
    const recorded = namedEvents(fixture.bodyText ?? '');
    const simulated = namedEvents(text);
    expect(simulated.map((event) => event.event)).toEqual(recorded.map((event) => event.event));
    expect(simulated.map((event) => shape(event.data))).toEqual(recorded.map((event) => shape(event.data)));
    // Every data payload names its own event type.
    for (const event of simulated) expect((event.data as { type: string }).type).toBe(event.event);
  });

  it('messages-stop-sequence: the text stops before the sequence, stop_reason end_turn and the sequence named', async () => {
    const { fixture, response, text } = await replay('messages-stop-sequence');
    const body = JSON.parse(text) as Record<string, any>;
    expect(shape(body)).toEqual(shape(fixture.body));
    // The recorded stop was "e"; the simulated text holds one too, so it stops at its first "e".
    expect(response.status).toBe(200);
    expect(body).toMatchObject({ stop_reason: 'end_turn', stop_sequence: 'e' });
    expect(body.content[0].text).not.toContain('e');
  });
});

describe('llama.cpp flavour: chat options against a real llama-server', () => {
  it.each([['chat-completion-n2'], ['chat-completion-logprobs'], ['chat-completion-stop'], ['chat-completion-max-tokens-past-context'], ['chat-completion-tool-none']])(
    '%s: same status, headers and body shape',
    async (name) => {
      const { fixture, response, text } = await replay(name);
      expect(response.status).toBe(fixture.status);
      expectHeaders(response, fixture);
      expect(shape(JSON.parse(text))).toEqual(shape(fixture.body));
    },
  );

  it('chat-completion-max-tokens-past-context: fills the slot exactly and says length', async () => {
    const { fixture, text } = await replay('chat-completion-max-tokens-past-context');
    const recorded = fixture.body as Record<string, any>;
    const body = JSON.parse(text) as Record<string, any>;
    expect(body.choices[0].finish_reason).toBe(recorded.choices[0].finish_reason);
    expect(body.usage.total_tokens).toBe(recorded.usage.total_tokens);
  });

  it('chat-completion-logprobs-stream: every token chunk carries one logprobs entry of the recorded shape', async () => {
    const { fixture, text } = await replay('chat-completion-logprobs-stream');
    expect(sseEvents(text).map(shape)).toEqual(sseEvents(fixture.bodyText ?? '').map(shape));
  });

  it('chat-completion-n2-stream: each choice streams the recorded chunk sequence, the two interleaved, one [DONE]', async () => {
    const { fixture, text } = await replay('chat-completion-n2-stream');
    const recorded = sseEvents(fixture.bodyText ?? '');
    const simulated = sseEvents(text);
    expect(simulated.at(-1)).toBe('[DONE]');
    expect(simulated.filter((event) => event === '[DONE]')).toHaveLength(1);
    type Chunk = { choices: Array<{ index: number }> };
    const ofChoice = (events: unknown[], index: number): unknown[] =>
      events.filter((event): event is Chunk => typeof event === 'object' && (event as Chunk).choices[0]?.index === index).map(shape);
    for (const index of [0, 1]) expect(ofChoice(simulated, index)).toEqual(ofChoice(recorded, index));
    // Interleaved, not one choice after the other.
    const order = simulated.slice(0, -1).map((event) => (event as Chunk).choices[0]?.index);
    expect(order.indexOf(1)).toBeLessThan(order.lastIndexOf(0));
  });

  it('chat-completion-json-schema-no-jinja: valid JSON of the schema, finish stop, the recorded shape', async () => {
    const { fixture, text } = await replay('chat-completion-json-schema-no-jinja');
    const body = JSON.parse(text) as Record<string, any>;
    expect(shape(body)).toEqual(shape(fixture.body));
    expect(body.choices[0].finish_reason).toBe('stop');
    const document = JSON.parse(body.choices[0].message.content) as Record<string, unknown>;
    expect(typeof document.text).toBe('string');
    expect((document.text as string).length).toBeLessThanOrEqual(12);
  });
});
