/**
 * Routing by cost and latency against simulators set up as cheap-but-slow
 * (llama.cpp flavour) and fast-but-expensive (vLLM flavour).
 */
import { describe, expect, it } from 'vitest';
import { backendFor, closedAfterEach, post, waitFor, type TestGateway } from '../../helpers/gateway.ts';

const { sim, gateway: gatewayWith } = closedAfterEach();

const fastScrape = { scrape: { intervalMs: 100, staleAfterMs: 1_000 }, health: { intervalMs: 200 } };

async function chat(gateway: TestGateway, body: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return post(`${gateway.baseURL}/chat/completions`, JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello' }], max_tokens: 4, ...body }), {
    'content-type': 'application/json',
    ...headers,
  });
}

async function cheapAndFast(policy: string, extra: Record<string, unknown> = {}) {
  const cheap = await sim({ flavor: 'llamacpp', ttftMs: 120, tokensPerSecond: 200, maxConcurrency: 2 });
  const fast = await sim({ flavor: 'vllm', ttftMs: 5, maxConcurrency: 64 });
  const gateway = await gatewayWith({
    backends: [
      backendFor('cheap', cheap, { ...fastScrape, cost: { inputPer1M: 0.05, outputPer1M: 0.1 } }),
      backendFor('fast', fast, { ...fastScrape, cost: { inputPer1M: 2, outputPer1M: 8 } }),
    ],
    models: [
      {
        name: 'm',
        policy,
        targets: [
          { backend: 'cheap', model: 'qwen3-8b-q4' },
          { backend: 'fast', model: 'Qwen/Qwen3-8B' },
        ],
        ...extra,
      },
    ],
  });
  return { cheap, fast, gateway };
}

describe('policy cheapest', () => {
  it('stays on the cheap backend within the SLO, shifts when its queue makes it miss, and comes back', async () => {
    const { cheap, gateway } = await cheapAndFast('cheapest', { slo: { ttftMs: 600 } });
    // Neither is measured yet: one exploration request each (its prior, 1 s, would miss the SLO).
    const explored = new Set<string>();
    for (let index = 0; index < 2; index++) {
      const response = await chat(gateway);
      expect(response.headers.get('x-switchyard-route-reason')).toBe('explore');
      explored.add(response.headers.get('x-switchyard-backend') ?? '');
    }
    expect([...explored].sort()).toEqual(['cheap', 'fast']);
    for (let index = 0; index < 5; index++) {
      const response = await chat(gateway);
      expect(response.headers.get('x-switchyard-backend')).toBe('cheap');
      expect(response.headers.get('x-switchyard-route-reason')).toBe('cheapest-within-slo');
    }
    // Load the cheap backend directly (another tenant of the machine): 2 slots busy, a long queue behind them.
    const hogs = Array.from({ length: 14 }, () =>
      fetch(`${cheap.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'hog' }], max_tokens: 100 }),
      }).then((response) => response.text()),
    );
    await waitFor(
      async () => {
        const admin = (await (await fetch(`${gateway.url}/admin/backends`)).json()) as { backends: Array<{ id: string; load: { runtimeQueued: number | null } }> };
        return (admin.backends.find((backend) => backend.id === 'cheap')?.load.runtimeQueued ?? 0) >= 8;
      },
      3_000,
      'the scraped queue of the cheap backend',
    );
    const shifted = await chat(gateway);
    expect(shifted.headers.get('x-switchyard-backend')).toBe('fast'); // the cheapest backend still within the SLO
    await Promise.all(hogs);
    await waitFor(async () => (await chat(gateway)).headers.get('x-switchyard-backend') === 'cheap', 5_000, 'traffic to return to the cheap backend');
  });

  it('rejects with 503 slo_unmet and retry-after when the route says onSloMiss: reject', async () => {
    const { gateway } = await cheapAndFast('cheapest', { slo: { ttftMs: 1 }, onSloMiss: 'reject' });
    // Teach the EWMAs real latencies first (both exceed 1 ms).
    for (const policy of ['fastest', 'least-loaded']) for (let index = 0; index < 3; index++) await chat(gateway, { stream: false }, { 'x-switchyard-policy': policy });
    const response = await chat(gateway);
    expect(response.status).toBe(503);
    expect(response.json.error.code).toBe('slo_unmet');
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});

describe('policies fastest, balanced, weighted', () => {
  it('fastest prefers the low-latency backend once latencies are observed', async () => {
    const { gateway } = await cheapAndFast('fastest');
    const seen: Record<string, number> = {};
    for (let index = 0; index < 30; index++) {
      const backend = (await chat(gateway)).headers.get('x-switchyard-backend') ?? '';
      seen[backend] = (seen[backend] ?? 0) + 1;
    }
    expect(seen.fast ?? 0).toBeGreaterThanOrEqual(24);
  });

  it('balanced follows costWeight: 1 = cheapest, 0 = fastest', async () => {
    const costOnly = await cheapAndFast('balanced', { costWeight: 1 });
    for (let index = 0; index < 2; index++) expect((await chat(costOnly.gateway)).headers.get('x-switchyard-route-reason')).toBe('explore');
    for (let index = 0; index < 5; index++) expect((await chat(costOnly.gateway)).headers.get('x-switchyard-backend')).toBe('cheap');
    const latencyOnly = await cheapAndFast('balanced', { costWeight: 0 });
    const seen: string[] = [];
    for (let index = 0; index < 20; index++) seen.push((await chat(latencyOnly.gateway)).headers.get('x-switchyard-backend') ?? '');
    expect(seen.slice(10).filter((backend) => backend === 'fast').length).toBeGreaterThanOrEqual(9);
  });

  it('weighted splits traffic within a few percent over 1,000 requests', async () => {
    const a = await sim({ flavor: 'vllm' });
    const b = await sim({ flavor: 'vllm' });
    const gateway = await gatewayWith({
      backends: [backendFor('a', a), backendFor('b', b)],
      models: [
        {
          name: 'm',
          policy: 'weighted',
          targets: [
            { backend: 'a', model: 'Qwen/Qwen3-8B', weight: 80 },
            { backend: 'b', model: 'Qwen/Qwen3-8B', weight: 20 },
          ],
        },
      ],
    });
    const counts: Record<string, number> = { a: 0, b: 0 };
    for (let batch = 0; batch < 50; batch++) {
      const responses = await Promise.all(Array.from({ length: 20 }, () => chat(gateway, { max_tokens: 1 })));
      for (const response of responses) counts[response.headers.get('x-switchyard-backend') ?? '']!++;
    }
    expect(counts.a! + counts.b!).toBe(1000);
    expect(Math.abs(counts.a! / 1000 - 0.8)).toBeLessThan(0.04);
  });

  it('lets x-switchyard-policy pick an allowed policy and refuses others', async () => {
    const { gateway } = await cheapAndFast('cheapest', { slo: { ttftMs: 5_000 }, allowedPolicies: ['cheapest', 'fastest'] });
    expect((await chat(gateway, {}, { 'x-switchyard-policy': 'fastest' })).status).toBe(200);
    const refused = await chat(gateway, {}, { 'x-switchyard-policy': 'weighted' });
    expect(refused.status).toBe(400);
    expect(refused.json.error.param).toBe('x-switchyard-policy');
  });
});

describe('explanations', () => {
  it('/admin/backends shows health, circuit, load, latencies, cost and the last decision', async () => {
    const { gateway } = await cheapAndFast('cheapest', { slo: { ttftMs: 600 } });
    for (let index = 0; index < 3; index++) await chat(gateway, { stream: true }); // two explorations, then a choice
    const admin = (await (await fetch(`${gateway.url}/admin/backends`)).json()) as { backends: Array<Record<string, any>> };
    const cheap = admin.backends.find((backend) => backend.id === 'cheap');
    expect(cheap).toMatchObject({
      kind: 'llamacpp',
      health: 'up',
      circuit: { state: 'closed' },
      load: { maxConcurrency: 256, slots: 2, runtimeQueued: expect.any(Number) },
      cost: { inputPer1M: 0.05, outputPer1M: 0.1 },
      lastDecision: { model: 'm', chosen: true, reason: 'cheapest-within-slo', predictedTtftMs: expect.any(Number) },
    });
    expect(cheap?.latency).toMatchObject({ measured: true, tpotMs: expect.any(Number) });
    expect(cheap?.latency.outputTokens).toBeLessThan(256); // moving from the assumed 256 towards the 4 it produced
    expect(cheap?.latency.prefillBaseMs).toBeGreaterThan(50); // the simulator's 120 ms time to first token
    expect(cheap?.latency.capacityTokensPerSecond).toBeGreaterThan(0);
    expect(cheap?.models).toHaveProperty('qwen3-8b-q4');
  });
});
