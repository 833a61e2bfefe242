/**
 * The context-window check refuses only what certainly cannot fit (issue 13,
 * item 3): the default completion budget is never counted, a lower bound of the
 * prompt decides refusals, uncertain requests go to the largest window, and
 * llama.cpp-style runtimes only need the prompt to fit.
 */
import { describe, expect, it } from 'vitest';
import { decide } from '../../../src/routing/decide.ts';
import type { ContextNeed } from '../../../src/routing/types.ts';
import { candidate, routeRequest, seeded } from './snapshot.ts';

/** The request as the pipeline describes it: an estimate, the prediction budget, and what the context check counts. */
function request(promptTokens: number, context: Partial<ContextNeed> & { floor?: number } = {}) {
  const floor = context.floor ?? promptTokens;
  return routeRequest({
    promptTokens,
    maxTokens: context.maxTokens ?? 256, // the budget predictions assume when the client sets none
    context: { promptFloor: () => floor, maxTokens: context.maxTokens, minOutput: context.minOutput ?? 1 },
  });
}

describe('decide: context windows (refuse only when certain)', () => {
  it('issue case 1: no max_tokens, a 304-token prompt, a 512-token window: served, the 256 default is not counted', () => {
    const decision = decide([candidate('a', { contextLength: 512 })], request(304), seeded(1));
    expect(decision.reject).toBeUndefined();
    expect(decision.order).toEqual(['a']);
    expect(decision.reason).not.toBe('largest-window');
    // With the client's own max_tokens 256 it does not fit (304 + 256 > 512): refused, naming both numbers.
    const capped = decide([candidate('a', { contextLength: 512 })], request(304, { maxTokens: 256 }), seeded(1));
    expect(capped.reject?.code).toBe('context_length_exceeded');
    expect(capped.reject?.message).toContain('needs at least 560 tokens (a prompt of at least 304 tokens + max_tokens 256)');
    expect(capped.reject?.message).toContain('512 tokens');
  });

  it('issue case 2: the estimate over-counts ("hello " * 400: estimated 627, 400 words): forwarded to the largest window', () => {
    const decision = decide([candidate('a', { contextLength: 512 })], request(627, { floor: 400 }), seeded(2));
    expect(decision.reject).toBeUndefined();
    expect(decision.order).toEqual(['a']);
    expect(decision.reason).toBe('largest-window');
    expect(decision.scores[0]?.excluded).toBeUndefined();
  });

  it('refuses when even the lower bound does not fit, with the bound in the message', () => {
    const decision = decide([candidate('a', { contextLength: 512 }), candidate('b', { contextLength: 256 })], request(2_000, { floor: 600 }), seeded(3));
    expect(decision.order).toEqual([]);
    expect(decision.reject?.code).toBe('context_length_exceeded');
    expect(decision.reject?.message).toBe(
      "This request needs at least 601 tokens (a prompt of at least 600 tokens + 1 for the answer), but the largest context window of this model's backends is 512 tokens. Shorten the messages or lower max_tokens.",
    );
    expect(decision.scores.map((score) => score.excluded)).toEqual(['context-length', 'context-length']);
  });

  it('candidates the estimate fits come first; uncertain ones follow, most room first; certain misfits are dropped', () => {
    const candidates = [
      candidate('tiny', { contextLength: 300 }), // the floor (500) does not fit: excluded
      candidate('small', { contextLength: 1_000 }), // the estimate (1,200) does not fit, the floor does: stretch
      candidate('medium', { contextLength: 1_100 }), // stretch, more room than small
      candidate('large', { contextLength: 4_096 }), // fits
    ];
    const decision = decide(candidates, request(1_199, { floor: 500 }), seeded(4));
    expect(decision.order).toEqual(['large', 'medium', 'small']);
    expect(decision.reason).not.toBe('largest-window');
    expect(decision.scores.find((score) => score.backend === 'tiny')?.excluded).toBe('context-length');
    // Without the one that fits, the largest window goes first.
    const withoutLarge = decide(candidates.slice(0, 3), request(1_199, { floor: 500 }), seeded(4));
    expect(withoutLarge.order).toEqual(['medium', 'small']);
    expect(withoutLarge.reason).toBe('largest-window');
  });

  it('an unhealthy stretch candidate stays excluded as unhealthy; a stretch candidate alone is still tried', () => {
    const decision = decide([candidate('down', { contextLength: 4_096, healthy: false }), candidate('small', { contextLength: 1_000 })], request(1_199, { floor: 500 }), seeded(5));
    expect(decision.order).toEqual(['small']);
    expect(decision.scores[0]?.excluded).toBe('unhealthy');
  });

  it('llama.cpp counts only the prompt: max_tokens past the window is served there', () => {
    const llama = candidate('llama', { contextLength: 512, contextCountsMaxTokens: false });
    const vllm = candidate('vllm', { contextLength: 512 });
    const decision = decide([llama, vllm], request(300, { maxTokens: 1_000 }), seeded(6));
    expect(decision.order).toEqual(['llama']);
    expect(decision.scores.find((score) => score.backend === 'vllm')?.excluded).toBe('context-length');
    // The prompt alone must still leave room for the answer.
    expect(decide([llama], request(512, { maxTokens: 1 }), seeded(6)).reject?.code).toBe('context_length_exceeded');
  });

  it('embeddings only need the input to fit (no room for an answer)', () => {
    const decision = decide([candidate('e', { contextLength: 512 })], request(512, { minOutput: 0 }), seeded(7));
    expect(decision.order).toEqual(['e']);
    expect(decide([candidate('e', { contextLength: 512 })], request(513, { minOutput: 0 }), seeded(7)).reject?.code).toBe('context_length_exceeded');
  });

  it('the lower bound is computed only when the estimate does not fit a window (nothing extra for requests that clearly fit)', () => {
    let calls = 0;
    const counted = routeRequest({ promptTokens: 100, maxTokens: 256, context: { promptFloor: () => ++calls, maxTokens: undefined, minOutput: 1 } });
    decide([candidate('a', { contextLength: 8_192 }), candidate('b', { contextLength: undefined })], counted, seeded(8));
    expect(calls).toBe(0);
    const near = routeRequest({ promptTokens: 9_000, maxTokens: 256, context: { promptFloor: () => ++calls, maxTokens: undefined, minOutput: 1 } });
    decide([candidate('a', { contextLength: 8_192 }), candidate('c', { contextLength: 4_096 })], near, seeded(8));
    expect(calls).toBe(1); // once per decision, however many windows it is checked against
  });
});
