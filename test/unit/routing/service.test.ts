/** What the router learns of a backend (backends/latency.ts) and how it predicts queue waits and explores (routing/). */
import { describe, expect, it } from 'vitest';
import { PRIOR_PROMPT_TOKENS, PrefillFit, SAMPLE_HALF_LIFE_MS } from '../../../src/backends/latency.ts';
import { decide } from '../../../src/routing/decide.ts';
import { outputPricePer1M, predictTtftMs, predictWaitMs } from '../../../src/routing/predict.ts';
import { candidate, routeRequest, seeded, tally } from './snapshot.ts';

describe('prefill fit', () => {
  it('learns a constant and a per-token slope from requests of different prompt sizes', () => {
    const fit = new PrefillFit();
    expect(fit.predict(100)).toBeUndefined();
    const prompts = [40, 400, 1000, 2500, 5000, 120, 3000, 800];
    for (const [index, prompt] of prompts.entries()) fit.add(prompt, 50 + 0.2 * prompt, 1_000 + 100 * index);
    expect(fit.intercept).toBeCloseTo(50, 5);
    expect(fit.slope).toBeCloseTo(0.2, 5);
    expect(fit.predict(2000)).toBeCloseTo(450, 3);
  });

  it('scales the mean with the prompt until prompt sizes spread enough to fit a slope', () => {
    const fit = new PrefillFit();
    fit.add(4744, 500, 1); // one long prompt: 500 ms
    expect(fit.predict(4744)).toBeCloseTo(500);
    expect(fit.predict(744)).toBeCloseTo((500 * (256 + 744)) / (256 + 4744)); // a short one is not predicted at 500 ms
    const short = new PrefillFit();
    short.add(100, 20, 1); // one short prompt: 20 ms
    expect(short.predict(3000)).toBeCloseTo((20 * (256 + 3000)) / (256 + 100)); // a long one is not predicted at 20 ms either
    fit.add(4745, 540, 2);
    const mean = (500 * 0.95 + 540) / 1.95; // weighted towards the newer sample
    expect(fit.predict(4744.5)).toBeCloseTo(mean, 0);
  });

  it('starts from the prior, scaled to the prompt, until the first sample', () => {
    const fit = new PrefillFit(1000);
    expect(fit.predict(PRIOR_PROMPT_TOKENS)).toBe(1000);
    expect(fit.predict(4744)).toBeCloseTo((1000 * (256 + 4744)) / (256 + 1000)); // a long prompt is predicted slower
    fit.add(100, 20, 1);
    expect(fit.predict(100)).toBeCloseTo(20);
    // Longer prompts than any seen: no faster than the prior until a slope is fitted.
    expect(fit.predict(3000)).toBeCloseTo((1000 * (256 + 3000)) / (256 + 1000));
    fit.add(900, 100, 2);
    fit.add(500, 60, 3);
    expect(fit.fitted).toBe(true);
    expect(fit.predict(3000)).toBeCloseTo(310, -1); // 10 ms + 0.1 ms per token
  });

  it('keeps its figures over an idle spell, and lets new samples take over after it', () => {
    const fit = new PrefillFit();
    for (let index = 0; index < 20; index++) fit.add(100, 1000, index);
    // An hour idle: still predicted from the old figures...
    expect(fit.predict(100)).toBeCloseTo(1000);
    // ...but one new sample after it outweighs them (12 half-lives).
    fit.add(100, 100, 20 + 12 * SAMPLE_HALF_LIFE_MS);
    expect(fit.predict(100)).toBeLessThan(110);
  });
});

describe('queue wait from the requests ahead', () => {
  // 2 slots; a service of 100 ms prefill + 100 output tokens × 10 ms = 1,100 ms.
  const busy = (ahead: Array<{ serviceMs: number; elapsedMs: number; limitMs?: number }>) =>
    candidate('a', {
      slots: 2,
      inflight: ahead.length,
      running: undefined,
      queued: undefined,
      ttftMs: 100,
      tpotMs: 10,
      outputTokens: 100,
      ahead: ahead.map((job) => ({ limitMs: Number.POSITIVE_INFINITY, ...job })),
    });

  it('waits for the first slot to free when one request is ahead of two busy slots', () => {
    const ahead = [
      { serviceMs: 1100, elapsedMs: 300 }, // 800 left
      { serviceMs: 1100, elapsedMs: 100 }, // 1,000 left
    ];
    expect(predictWaitMs(busy(ahead))).toBeCloseTo(800);
    expect(predictTtftMs(busy(ahead))).toBeCloseTo(900); // + 100 ms prefill
  });

  it('lays queued requests onto the slots as they free', () => {
    const ahead = [
      { serviceMs: 1100, elapsedMs: 500 }, // 600 left
      { serviceMs: 1100, elapsedMs: 100 }, // 1,000 left
      { serviceMs: 1100, elapsedMs: 0 }, // queued: takes the first slot at 600, holds it to 1,700
      { serviceMs: 300, elapsedMs: 0 }, // queued: the second at 1,000, to 1,300
    ];
    expect(predictWaitMs(busy(ahead))).toBeCloseTo(1300);
  });

  it('expects a request past its expected service to run half a typical answer more, within its max_tokens', () => {
    // Answers vary in length: one that ran long is likely a long one. Typical output 100 tokens × 10 ms: 500 ms more.
    expect(
      predictWaitMs(
        busy([
          { serviceMs: 1100, elapsedMs: 5000 },
          { serviceMs: 1100, elapsedMs: 5000 },
        ]),
      ),
    ).toBeCloseTo(500);
    // Its max_tokens ends it sooner: 5,100 ms at most, 100 left; never less than one token.
    expect(
      predictWaitMs(
        busy([
          { serviceMs: 1100, elapsedMs: 5000, limitMs: 5100 },
          { serviceMs: 1100, elapsedMs: 5000 },
        ]),
      ),
    ).toBeCloseTo(100);
    expect(
      predictWaitMs(
        busy([
          { serviceMs: 1100, elapsedMs: 5000, limitMs: 5000 },
          { serviceMs: 1100, elapsedMs: 5000 },
        ]),
      ),
    ).toBeCloseTo(10);
  });

  it('predicts no wait while a slot is free, and counts requests the runtime reports beyond ours', () => {
    expect(predictWaitMs(busy([{ serviceMs: 1100, elapsedMs: 0 }]))).toBe(0);
    // The runtime runs 2 of another client's (half a typical service, 550 ms, left each) and queues our one
    // request behind them: it takes the first slot to free, ours the second, at 550 ms.
    const shared = candidate('a', {
      slots: 2,
      inflight: 1,
      running: 2,
      queued: 1,
      ttftMs: 100,
      tpotMs: 10,
      outputTokens: 100,
      ahead: [{ serviceMs: 1100, elapsedMs: 0, limitMs: Number.POSITIVE_INFINITY }],
    });
    expect(predictWaitMs(shared)).toBeCloseTo(550);
  });

  it('expects a request ahead to produce its typical output, not a fixed 256 tokens', () => {
    const short = candidate('a', { slots: 1, inflight: 1, running: undefined, queued: undefined, ttftMs: 100, tpotMs: 10, outputTokens: 20 });
    expect(predictWaitMs(short)).toBeCloseTo(100 + 20 * 10);
  });
});

describe('exploration of unmeasured backends', () => {
  const request = routeRequest({ policy: 'cheapest', slo: { ttftMs: 500 } });
  const measured = candidate('known', { cost: { outputPer1M: 10 } });
  const fresh = (inflight: number) => candidate('new', { unmeasured: true, inflight, ttftMs: undefined, tpotMs: undefined, ttftPriorMs: 1000, tpotPriorMs: 50 });

  it('sends one request at a time to a backend nobody measured, even when its prior misses the SLO', () => {
    const decision = decide([measured, fresh(0)], request, seeded(1));
    expect(decision.order[0]).toBe('new');
    expect(decision.reason).toBe('explore');
    // With its one exploration in flight, the others are predicted from the (conservative) prior.
    const next = decide([measured, fresh(1)], request, seeded(1));
    expect(next.order).toEqual(['known', 'new']);
    expect(next.reason).toBe('cheapest-within-slo');
  });

  it('does not explore with a long prompt', () => {
    const long = routeRequest({ policy: 'cheapest', slo: { ttftMs: 500 }, promptTokens: 4000 });
    expect(decide([measured, fresh(0)], long, seeded(1)).reason).toBe('cheapest-within-slo');
  });

  it('spreads explorations at random over several new backends, and only on the predicting policies', () => {
    const counts = tally(400, () => decide([candidate('x', { unmeasured: true }), candidate('y', { unmeasured: true })], request, seeded(Math.random() * 1e9)).order[0]);
    expect(counts.get('x')).toBeGreaterThan(120);
    expect(counts.get('y')).toBeGreaterThan(120);
    for (const policy of ['least-loaded', 'weighted', 'round-robin'] as const) {
      expect(decide([measured, fresh(0)], routeRequest({ policy }), seeded(2)).reason).not.toBe('explore');
    }
  });
});

describe('round-robin', () => {
  it('starts one target further along the list on every turn', () => {
    const targets = [candidate('a'), candidate('b'), candidate('c')];
    const firsts = [0, 1, 2, 3, 4].map((turn) => decide(targets, routeRequest({ policy: 'round-robin', turn }), seeded(3)).order);
    expect(firsts.map((order) => order[0])).toEqual(['a', 'b', 'c', 'a', 'b']);
    expect(firsts[1]).toEqual(['b', 'c', 'a']);
  });
});

describe('capacity behind a perHour price', () => {
  it('gives identical machines the same price whatever traffic they saw', () => {
    const box = (inflight: number) => candidate('box', { cost: { perHour: 0.36 }, inflight, throughputTokensPerSecond: 4 * 25 });
    expect(outputPricePer1M(box(0))).toBeCloseTo(outputPricePer1M(box(4)));
    expect(outputPricePer1M(box(0))).toBeCloseTo((0.36 * 1e6) / (3600 * 100));
  });
});
