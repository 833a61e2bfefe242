/**
 * The prompt's lower bound (whitespace-separated words, token ids exactly)
 * that the context check refuses on, and what it counts per request kind.
 */
import { describe, expect, it } from 'vitest';
import { clientMaxTokens, contextNeed, estimatePromptTokens, promptTokenFloor } from '../../../src/proxy/estimate.ts';

describe('promptTokenFloor', () => {
  it('issue case 2: "hello " * 400 is 448 tokens for the runtime, estimated 600+, bounded below by its 400 words', () => {
    const body = { messages: [{ role: 'user', content: 'hello '.repeat(400) }] };
    expect(estimatePromptTokens(body)).toBeGreaterThan(600);
    expect(promptTokenFloor(body)).toBe(400);
  });

  it('counts words across messages and text parts, nothing that might not be tokenised (images, tools, names)', () => {
    const body = {
      messages: [
        { role: 'system', content: 'You are terse.', name: 'a-very-long-name-that-may-or-may-not-be-rendered' },
        { role: 'user', content: [{ type: 'text', text: 'two words' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }, 'raw part here'] },
      ],
      tools: [{ type: 'function', function: { name: 'f', description: 'many words in a description' } }],
    };
    expect(promptTokenFloor(body)).toBe(3 + 2 + 3);
  });

  it('whitespace of every ASCII kind separates; runs of it and text without any count as they must', () => {
    expect(promptTokenFloor({ prompt: ' a\tb\nc\r\nd  e ' })).toBe(5);
    expect(promptTokenFloor({ prompt: 'x'.repeat(10_000) })).toBe(1); // one word can be many tokens, never fewer than one
    expect(promptTokenFloor({ prompt: '   ' })).toBe(0);
    expect(promptTokenFloor({ prompt: 'a\u00a0b' })).toBe(1); // a no-break space may join: counted as one
  });

  it('token ids count exactly; a batch counts its longest sequence (each is a sequence of its own)', () => {
    expect(promptTokenFloor({ prompt: [1, 2, 3, 4] })).toBe(4);
    expect(
      promptTokenFloor({
        prompt: [
          [1, 2],
          [3, 4, 5],
        ],
      }),
    ).toBe(3);
    expect(promptTokenFloor({ prompt: ['one two three', 'four'] })).toBe(3);
    expect(promptTokenFloor({ input: ['a b', 'c d e f'] })).toBe(4);
    expect(promptTokenFloor({})).toBe(0);
  });
});

describe('contextNeed', () => {
  it("counts the client's max_tokens (max_completion_tokens first), never a default; per choice", () => {
    expect(contextNeed({ messages: [], max_tokens: 100, n: 4 })).toMatchObject({ maxTokens: 100, minOutput: 1 });
    expect(contextNeed({ messages: [], max_completion_tokens: 50, max_tokens: 100 }).maxTokens).toBe(50);
    expect(contextNeed({ prompt: 'x' }).maxTokens).toBeUndefined();
    expect(clientMaxTokens({ max_tokens: 'a lot' })).toBeUndefined();
  });

  it('embeddings need only their input to fit', () => {
    expect(contextNeed({ input: 'hello world', max_tokens: 5 })).toMatchObject({ maxTokens: undefined, minOutput: 0 });
    expect(contextNeed({ input: 'hello world' }).promptFloor()).toBe(2);
  });
});
