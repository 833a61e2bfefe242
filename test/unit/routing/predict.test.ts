import { describe, expect, it } from 'vitest';
import { costIsAssumed, costPer1M, outputPricePer1M, predictTpotMs, predictTtftMs, predictWaitMs, TPOT_PRIOR_MS, TTFT_PRIOR_MS } from '../../../src/routing/predict.ts';
import { decide } from '../../../src/routing/decide.ts';
import { candidate, routeRequest } from './snapshot.ts';

// Service time of one request ahead with the default candidate: 200 + 256 × 20 ms.
const SERVICE_MS = 200 + 256 * 20;

describe('predicted time to first token', () => {
  it('is the EWMA TTFT when the backend is idle', () => {
    expect(predictTtftMs(candidate('a'))).toBe(200);
    expect(predictWaitMs(candidate('a'))).toBe(0);
  });

  it('adds the wait for the llama.cpp queue, drained by its slots', () => {
    const busy = candidate('a', { slots: 4, running: 4, queued: 2 });
    // ahead = (2 + 4) + 1 − 4 = 3 requests, 4 slots in parallel.
    expect(predictTtftMs(busy)).toBeCloseTo(200 + (3 * SERVICE_MS) / 4);
  });

  it('takes vLLM parallelism from running requests when it reports a queue', () => {
    const busy = candidate('a', { running: 10, queued: 5 });
    expect(predictTtftMs(busy)).toBeCloseTo(200 + (6 * SERVICE_MS) / 10);
  });

  it('counts a full set of slots as one request ahead', () => {
    expect(predictTtftMs(candidate('a', { slots: 2, running: 2 }))).toBeCloseTo(200 + SERVICE_MS / 2);
  });

  it('uses the gateway in-flight count when it knows more than the scrape', () => {
    expect(predictTtftMs(candidate('a', { slots: 2, inflight: 3, running: 0 }))).toBeCloseTo(200 + (2 * SERVICE_MS) / 2);
  });

  it('ignores runtime figures from a stale scrape and uses in-flight only', () => {
    const stale = candidate('a', { metricsStale: true, queued: 50, running: 8, slots: 2, inflight: 3 });
    expect(predictTtftMs(stale)).toBeCloseTo(200 + (2 * SERVICE_MS) / 2);
    const staleNoSlots = candidate('a', { metricsStale: true, queued: 50, running: 8, inflight: 3 });
    expect(predictTtftMs(staleNoSlots)).toBe(200); // 3 in flight of maxConcurrency 64: no wait
  });

  it('never decreases as the queue grows', () => {
    let previous = 0;
    for (let queued = 0; queued <= 40; queued++) {
      const value = predictTtftMs(candidate('a', { running: 8, queued }));
      expect(value).toBeGreaterThanOrEqual(previous);
      previous = value;
    }
    previous = 0;
    for (let inflight = 0; inflight <= 40; inflight++) {
      const value = predictTtftMs(candidate('a', { metricsStale: true, queued: undefined, running: undefined, slots: 4, inflight }));
      expect(value).toBeGreaterThanOrEqual(previous);
      previous = value;
    }
  });

  it('falls back to the priors, or to per-backend hints, before any observation', () => {
    const fresh = candidate('a', { ttftMs: undefined, tpotMs: undefined });
    expect(predictTtftMs(fresh)).toBe(TTFT_PRIOR_MS);
    expect(predictTpotMs(fresh)).toBe(TPOT_PRIOR_MS);
    const hinted = candidate('a', { ttftMs: undefined, tpotMs: undefined, ttftPriorMs: 80, tpotPriorMs: 8 });
    expect(predictTtftMs(hinted)).toBe(80);
    expect(predictTpotMs(hinted)).toBe(8);
    expect(predictTtftMs(candidate('a', { ttftMs: 150, ttftPriorMs: 80 }))).toBe(150);
  });

  it('predicts the whole budget as TTFT + maxTokens × TPOT (the fastest policy scores by it)', () => {
    const decision = decide([candidate('a')], routeRequest({ policy: 'fastest', maxTokens: 100 }), () => 0.5);
    expect(decision.scores[0]?.score).toBe(200 + 100 * 20);
  });
});

describe('cost per 1M tokens', () => {
  it('blends input and output prices over the prompt and the completion budget', () => {
    const priced = candidate('a', { cost: { inputPer1M: 1, outputPer1M: 3 } });
    expect(costPer1M(priced, routeRequest({ promptTokens: 100, maxTokens: 300 }))).toBeCloseTo((1 * 100 + 3 * 300) / 400);
    expect(costPer1M(priced, routeRequest({ promptTokens: 0, maxTokens: 0 }))).toBe(3);
    expect(costPer1M(candidate('free'), routeRequest())).toBe(0);
  });

  it('turns a GPU hour into an output-token price through measured throughput', () => {
    const hourly = candidate('a', { cost: { perHour: 3.6 }, throughputTokensPerSecond: 500 });
    // 3.6 / (3600 s × 500 tokens/s) per token = 2 per 1M output tokens.
    expect(outputPricePer1M(hourly)).toBeCloseTo(2);
    expect(costPer1M(hourly, routeRequest({ promptTokens: 100, maxTokens: 100 }))).toBeCloseTo(1);
    expect(costIsAssumed(hourly)).toBe(false);
  });

  it('says when the capacity behind a perHour price rests on the prior speed', () => {
    const unmeasured = candidate('a', { cost: { perHour: 3.6 }, tpotMs: undefined, throughputTokensPerSecond: 4 * 20 });
    expect(outputPricePer1M(unmeasured)).toBeCloseTo((3.6 * 1e6) / (3600 * 80));
    expect(costIsAssumed(unmeasured)).toBe(true);
    expect(costIsAssumed(candidate('b', { cost: { outputPer1M: 1 } }))).toBe(false);
  });
});
