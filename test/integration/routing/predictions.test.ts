/**
 * Routing predictions against simulators: a cold-start burst is not piled onto
 * backends nobody measured, the router's TTFT predictions are scored by a
 * metric, what the fleet cost reconciles, and round-robin rotates.
 */
import { describe, expect, it } from 'vitest';
import { backendFor, closedAfterEach, post, waitFor, type TestGateway } from '../../helpers/gateway.ts';
import { metricValue } from '../../helpers/metrics-text.ts';

const { sim, gateway: gatewayWith } = closedAfterEach();
const quick = { scrape: { intervalMs: 100, staleAfterMs: 1_000 }, health: { intervalMs: 200 } };

async function chat(gateway: TestGateway, body: Record<string, unknown> = {}) {
  return post(`${gateway.baseURL}/chat/completions`, JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello there' }], max_tokens: 8, ...body }));
}

async function metrics(gateway: TestGateway): Promise<string> {
  return (await fetch(`${gateway.url}/metrics`)).text();
}

describe('cold start', () => {
  it('explores each new backend with one request and fills slots it knows of, never a queue', async () => {
    // Two identical cheap 4-slot boxes priced per hour and a premium per-token backend; SLO 1 s. With the default
    // prior (1 s for 1,000 prompt tokens, 20 tokens/s) a fifth request on a box would wait for a 20-token answer: ~1.2 s.
    const boxes = [
      await sim({ flavor: 'llamacpp', ttftMs: 40, tokensPerSecond: 50, maxConcurrency: 4 }),
      await sim({ flavor: 'llamacpp', ttftMs: 40, tokensPerSecond: 50, maxConcurrency: 4 }),
    ];
    const premium = await sim({ flavor: 'vllm', ttftMs: 20, tokensPerSecond: 200 });
    const gateway = await gatewayWith({
      backends: [
        backendFor('box-a', boxes[0]!, { ...quick, cost: { perHour: 0.36 } }),
        backendFor('box-b', boxes[1]!, { ...quick, cost: { perHour: 0.36 } }),
        backendFor('premium', premium, { ...quick, cost: { inputPer1M: 2, outputPer1M: 10 } }),
      ],
      models: [
        {
          name: 'm',
          policy: 'cheapest',
          slo: { ttftMs: 1000 },
          targets: [
            { backend: 'box-a', model: 'qwen3-8b-q4' },
            { backend: 'box-b', model: 'qwen3-8b-q4' },
            { backend: 'premium', model: 'Qwen/Qwen3-8B' },
          ],
        },
      ],
    });
    await waitFor(
      async () =>
        ((await (await fetch(`${gateway.url}/admin/backends`)).json()) as { backends: Array<{ load: { slots: number | null } }> }).backends.filter((b) => b.load.slots === 4)
          .length === 2,
      3_000,
      'slots discovered',
    );
    // A burst of 14 streamed requests at once, before anything was measured.
    const burst = await Promise.all(Array.from({ length: 14 }, () => chat(gateway, { stream: true, max_tokens: 20 })));
    const by = (backend: string) => burst.filter((response) => response.headers.get('x-switchyard-backend') === backend);
    expect(burst.every((response) => response.status === 200)).toBe(true);
    // Each box took what its slots hold (4; the explorations among them), the rest went to premium: no queue anywhere.
    expect(by('box-a').length).toBe(4);
    expect(by('box-b').length).toBe(4);
    expect(by('premium').length).toBe(6);
    expect(burst.filter((response) => response.headers.get('x-switchyard-route-reason') === 'explore').length).toBe(3);
    for (const box of boxes) expect(box.stats().peakWaiting).toBe(0);
  });
});

describe('prediction error', () => {
  it('scores every measured attempt: after the first, predictions land within 1.5× of what happened', async () => {
    const backend = await sim({ flavor: 'llamacpp', ttftMs: 150, tokensPerSecond: 100, maxConcurrency: 2 });
    const gateway = await gatewayWith({
      backends: [backendFor('box', backend, quick)],
      models: [{ name: 'm', policy: 'fastest', targets: [{ backend: 'box', model: 'qwen3-8b-q4' }] }],
    });
    for (let index = 0; index < 10; index++) expect((await chat(gateway, { stream: true })).status).toBe(200);
    const text = await metrics(gateway);
    const count = metricValue(text, 'switchyard_route_ttft_prediction_ratio_count', { backend: 'box' });
    expect(count).toBe(10);
    // The first one was predicted from the 1 s prior (a ratio near 0.15); the nine after it from what was learnt.
    const within =
      metricValue(text, 'switchyard_route_ttft_prediction_ratio_bucket', { backend: 'box', le: '1.5' }) -
      metricValue(text, 'switchyard_route_ttft_prediction_ratio_bucket', { backend: 'box', le: '0.67' });
    expect(within).toBeGreaterThanOrEqual(8);
    expect(metricValue(text, 'switchyard_backend_prefill_base_seconds', { backend: 'box' })).toBeGreaterThan(0.1);
  });
});

describe('fleet cost', () => {
  it('accrues a perHour backend by the time it runs, busy or idle, and a per-token one by its requests', async () => {
    const box = await sim({ flavor: 'llamacpp' });
    const paid = await sim({ flavor: 'vllm' });
    const started = Date.now();
    const gateway = await gatewayWith({
      // 3,600 per hour: one unit per second it runs.
      backends: [backendFor('box', box, { ...quick, cost: { perHour: 3600 } }), backendFor('paid', paid, { ...quick, cost: { inputPer1M: 1000, outputPer1M: 2000 } })],
      models: [
        {
          name: 'm',
          policy: 'round-robin',
          targets: [
            { backend: 'box', model: 'qwen3-8b-q4' },
            { backend: 'paid', model: 'Qwen/Qwen3-8B' },
          ],
        },
      ],
    });
    for (let index = 0; index < 6; index++) expect((await chat(gateway)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // idle: the box still costs
    const text = await metrics(gateway);
    const elapsed = (Date.now() - started) / 1000;
    const boxCost = metricValue(text, 'switchyard_backend_cost_total', { backend: 'box' });
    // From its first probe to now, to within a probe interval (0.2 s) plus startup.
    expect(boxCost).toBeGreaterThan(elapsed - 0.6);
    expect(boxCost).toBeLessThanOrEqual(elapsed + 0.01);
    // The per-token backend cost exactly what its requests were charged.
    const paidCost = metricValue(text, 'switchyard_backend_cost_total', { backend: 'paid' });
    expect(paidCost).toBeGreaterThan(0);
    expect(paidCost).toBeCloseTo(metricValue(text, 'switchyard_cost_total', { backend: 'paid' }), 9);
  });
});

describe('round-robin', () => {
  it('rotates over the targets in list order', async () => {
    const sims = [await sim({ flavor: 'vllm' }), await sim({ flavor: 'vllm' }), await sim({ flavor: 'vllm' })];
    const gateway = await gatewayWith({
      backends: sims.map((simulator, index) => backendFor(`b${index}`, simulator)),
      models: [{ name: 'm', policy: 'round-robin', targets: sims.map((_, index) => ({ backend: `b${index}`, model: 'Qwen/Qwen3-8B' })) }],
    });
    const order: string[] = [];
    for (let index = 0; index < 7; index++) {
      const response = await chat(gateway);
      expect(response.headers.get('x-switchyard-route-reason')).toBe('round-robin');
      order.push(response.headers.get('x-switchyard-backend') ?? '');
    }
    expect(order).toEqual(['b0', 'b1', 'b2', 'b0', 'b1', 'b2', 'b0']);
  });
});

describe('llama.cpp without --metrics', () => {
  it('reads the running requests from /slots, so requests of other clients count', async () => {
    const box = await sim({ flavor: 'llamacpp', metrics: false, ttftMs: 20, tokensPerSecond: 20, maxConcurrency: 2 });
    const other = await sim({ flavor: 'llamacpp', ttftMs: 20, tokensPerSecond: 200, maxConcurrency: 2 });
    const gateway = await gatewayWith({
      backends: [backendFor('box', box, quick), backendFor('other', other, quick)],
      models: [
        {
          name: 'm',
          policy: 'least-loaded',
          targets: [
            { backend: 'box', model: 'qwen3-8b-q4' },
            { backend: 'other', model: 'qwen3-8b-q4' },
          ],
        },
      ],
    });
    type Load = { runtimeRunning: number | null; scrapeError: string | null };
    const loadOf = async (id: string) =>
      ((await (await fetch(`${gateway.url}/admin/backends`)).json()) as { backends: Array<{ id: string; load: Load }> }).backends.find((b) => b.id === id)?.load;
    await waitFor(async () => (await loadOf('box'))?.runtimeRunning === 0, 3_000, 'box load read from /slots');
    // Another client (not through the gateway) takes both of the box's slots.
    const direct = [0, 1].map(() =>
      fetch(`${box.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'qwen3-8b-q4', messages: [{ role: 'user', content: 'hi' }], max_tokens: 40 }),
      }),
    );
    await waitFor(async () => (await loadOf('box'))?.runtimeRunning === 2, 3_000, 'busy slots seen');
    expect((await loadOf('box'))?.scrapeError).toBeNull();
    // The gateway has nothing in flight there itself, yet sends elsewhere.
    for (let index = 0; index < 3; index++) expect((await chat(gateway)).headers.get('x-switchyard-backend')).toBe('other');
    await Promise.all(direct);
  });
});
