/**
 * Failover under a killed backend, circuit breaking, prefix affinity, context
 * windows, priority shedding, and backends that are still loading.
 */
import { describe, expect, it } from 'vitest';
import { backendFor, closedAfterEach, post, startSim, waitFor, type TestGateway } from '../../helpers/gateway.ts';

const { sim, gateway: gatewayWith } = closedAfterEach();

function chat(gateway: TestGateway, body: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return post(`${gateway.baseURL}/chat/completions`, JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello' }], max_tokens: 4, ...body }), {
    'content-type': 'application/json',
    ...headers,
  });
}

describe('failover', () => {
  it('a backend killed during 1,000 requests: no client sees an error', async () => {
    const a = await sim({ flavor: 'vllm', tokensPerSecond: 2_000 });
    const b = await sim({ flavor: 'llamacpp', maxConcurrency: 64 });
    const gateway = await gatewayWith({
      backends: [backendFor('a', a, { health: { intervalMs: 200 } }), backendFor('b', b)],
      models: [
        {
          name: 'm',
          targets: [
            { backend: 'a', model: 'Qwen/Qwen3-8B' },
            { backend: 'b', model: 'x' },
          ],
        },
      ],
    });
    let done = 0;
    const failures: string[] = [];
    const worker = async () => {
      while (done < 1_000) {
        done++;
        const response = await chat(gateway, { max_tokens: 8 });
        if (response.status !== 200) failures.push(`${response.status} ${response.text}`);
        if (done === 300) await a.close();
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    expect(failures).toEqual([]);
    expect(b.stats().completed).toBeGreaterThan(500);
  });
});

describe('circuit breaker', () => {
  it('opens after consecutive failures, routes around, and closes again once the backend recovers', async () => {
    const flaky = await sim({ flavor: 'vllm', failRate: 1, failMode: '500' });
    const steady = await sim({ flavor: 'vllm' });
    // The breakers' clock runs ahead when the test says so: the default 10 s cooldown passes without sleeping.
    let ahead = 0;
    const gateway = await gatewayWith(
      {
        backends: [backendFor('flaky', flaky, { circuit: { consecutiveFailures: 3 } }), backendFor('steady', steady)],
        models: [
          {
            name: 'm',
            policy: 'weighted',
            targets: [
              { backend: 'flaky', model: 'Qwen/Qwen3-8B', weight: 1 },
              { backend: 'steady', model: 'Qwen/Qwen3-8B', weight: 0 },
            ],
          },
        ],
      },
      { circuitClock: () => Date.now() + ahead },
    );
    for (let index = 0; index < 3; index++) expect((await chat(gateway)).status).toBe(200); // each fails over
    const admin = async () => ((await (await fetch(`${gateway.url}/admin/backends`)).json()) as { backends: Array<{ id: string; circuit: { state: string } }> }).backends;
    expect((await admin()).find((backend) => backend.id === 'flaky')?.circuit.state).toBe('open');
    const before = flaky.stats().requests;
    for (let index = 0; index < 5; index++) expect((await chat(gateway)).headers.get('x-switchyard-backend')).toBe('steady');
    expect(flaky.stats().requests).toBe(before);
    flaky.update({ failRate: 0 });
    ahead = 5_000; // halfway through the cooldown: the circuit stays open
    expect((await chat(gateway)).headers.get('x-switchyard-backend')).toBe('steady');
    expect(flaky.stats().requests).toBe(before);
    ahead = 10_000;
    expect((await chat(gateway)).headers.get('x-switchyard-backend')).toBe('flaky'); // the half-open probe
    expect((await admin()).find((backend) => backend.id === 'flaky')?.circuit.state).toBe('closed');
    expect((await chat(gateway)).headers.get('x-switchyard-backend')).toBe('flaky');
  });

  it('uses a backend that comes back after being down', async () => {
    const port = await (async () => {
      const probe = await startSim({ flavor: 'llamacpp' });
      const value = probe.port;
      await probe.close();
      return value;
    })();
    const gateway = await gatewayWith({
      backends: [{ id: 'late', kind: 'llamacpp', url: `http://127.0.0.1:${port}`, health: { intervalMs: 100 } }],
      models: [{ name: 'm', targets: [{ backend: 'late', model: 'x' }] }],
    });
    expect((await chat(gateway)).status).toBe(503);
    await sim({ flavor: 'llamacpp', port });
    await waitFor(async () => (await chat(gateway)).status === 200, 3_000, 'the backend to be used again');
  });
});

describe('prefix affinity', () => {
  it('keeps at least 90% of repeated-prefix requests on their backend while load stays balanced', async () => {
    const sims = await Promise.all([0, 1, 2, 3].map(() => sim({ flavor: 'vllm' })));
    const gateway = await gatewayWith({
      backends: sims.map((simulator, index) => backendFor(`b${index}`, simulator)),
      models: [{ name: 'm', affinity: { enabled: true, prefixMessages: 1 }, targets: sims.map((_simulator, index) => ({ backend: `b${index}`, model: 'Qwen/Qwen3-8B' })) }],
    });
    const prefixes = Array.from({ length: 40 }, (_value, index) => `You are assistant number ${index}. Follow the house style guide carefully.`);
    const home = new Map<string, string>();
    let total = 0;
    let atHome = 0;
    const perBackend: Record<string, number> = {};
    for (let round = 0; round < 5; round++) {
      const responses = await Promise.all(
        prefixes.map((prefix, index) =>
          chat(gateway, {
            messages: [
              { role: 'system', content: prefix },
              { role: 'user', content: `question ${round}-${index}` },
            ],
          }).then((response) => ({ prefix, response })),
        ),
      );
      for (const { prefix, response } of responses) {
        const backend = response.headers.get('x-switchyard-backend') ?? '';
        perBackend[backend] = (perBackend[backend] ?? 0) + 1;
        if (!home.has(prefix)) home.set(prefix, backend);
        else {
          total++;
          if (home.get(prefix) === backend) atHome++;
        }
      }
    }
    expect(atHome / total).toBeGreaterThanOrEqual(0.9);
    const counts = Object.values(perBackend);
    expect(counts).toHaveLength(4);
    expect(Math.max(...counts)).toBeLessThan(200 * 0.25 * 2); // no backend takes more than twice its share
  });
});

describe('context windows', () => {
  it('sends a long prompt to the backend that fits it, and answers 400 when none does', async () => {
    const small = await sim({ flavor: 'llamacpp', maxModelLen: 512 });
    const large = await sim({ flavor: 'vllm', maxModelLen: 8_192 });
    const gateway = await gatewayWith({
      backends: [backendFor('small', small), backendFor('large', large)],
      models: [
        {
          name: 'm',
          targets: [
            { backend: 'small', model: 'qwen3-8b-q4' },
            { backend: 'large', model: 'Qwen/Qwen3-8B' },
          ],
        },
      ],
    });
    const long = 'lorem ipsum '.repeat(400); // about 1,200 tokens
    for (let index = 0; index < 5; index++) {
      const response = await chat(gateway, { messages: [{ role: 'user', content: long }], max_tokens: 100 });
      expect(response.status).toBe(200);
      expect(response.headers.get('x-switchyard-backend')).toBe('large');
    }
    // Over every window by the estimate (~12,000 tokens), but not certainly (8,000 words could be 8,000 tokens):
    // it goes to the largest window, whose own context error answers, in the OpenAI shape.
    const before = small.stats().requests + large.stats().requests;
    const uncertain = await chat(gateway, { messages: [{ role: 'user', content: 'lorem ipsum '.repeat(4_000) }], max_tokens: 100 });
    expect(uncertain.status).toBe(400);
    expect(uncertain.json.error).toMatchObject({ code: 'context_length_exceeded', param: 'messages', type: 'invalid_request_error' });
    expect(uncertain.json.error.message).toContain("This model's maximum context length is 8192 tokens");
    expect(large.stats().requests).toBe(before - small.stats().requests + 1);
    // Certainly over every window (10,000 words): refused at the gateway, no backend asked.
    const huge = await chat(gateway, { messages: [{ role: 'user', content: 'lorem ipsum '.repeat(5_000) }], max_tokens: 100 });
    expect(huge.status).toBe(400);
    expect(huge.json.error).toMatchObject({ code: 'context_length_exceeded', param: 'messages', type: 'invalid_request_error' });
    expect(huge.json.error.message).toMatch(/needs at least 10100 tokens .*largest context window of this model's backends is 8192 tokens/);
    expect(small.stats().requests + large.stats().requests).toBe(before + 1);
  });
});

describe('admission control', () => {
  it('sheds low priority first with 429 and retry-after when the queue is full', async () => {
    const slow = await sim({ flavor: 'vllm', ttftMs: 300 });
    const gateway = await gatewayWith({
      backends: [backendFor('slow', slow, { maxConcurrency: 1, queue: { maxSize: 2 } })],
      models: [{ name: 'm', targets: [{ backend: 'slow', model: 'Qwen/Qwen3-8B' }] }],
    });
    const running = chat(gateway, {}, { 'x-switchyard-priority': 'normal' });
    await waitFor(() => slow.stats().running === 1, 2_000, 'the first request to run');
    const lowA = chat(gateway, {}, { 'x-switchyard-priority': 'low' });
    const lowB = chat(gateway, {}, { 'x-switchyard-priority': 'low' });
    await waitFor(
      async () => {
        const admin = (await (await fetch(`${gateway.url}/admin/backends`)).json()) as { backends: Array<{ load: { gatewayQueue: number } }> };
        return admin.backends[0]?.load.gatewayQueue === 2;
      },
      2_000,
      'two queued requests',
    );
    const high = chat(gateway, {}, { 'x-switchyard-priority': 'high' });
    const extraLow = await chat(gateway, {}, { 'x-switchyard-priority': 'low' });
    expect(extraLow.status).toBe(429);
    expect(extraLow.json.error).toMatchObject({ type: 'rate_limit_error', code: 'server_overloaded' });
    expect(Number(extraLow.headers.get('retry-after'))).toBeGreaterThan(0);
    const statuses = (await Promise.all([running, lowA, lowB, high])).map((response) => response.status);
    expect(statuses[0]).toBe(200);
    expect(statuses[3]).toBe(200); // high priority got in
    expect(statuses.slice(1, 3).sort()).toEqual([200, 429]); // one low was shed for it
  });
});

describe('loading backends', () => {
  it('does not use a llama.cpp backend that answers 503 Loading model until it is ready', async () => {
    const loading = await sim({ flavor: 'llamacpp', loadingMs: 60_000 });
    const ready = await sim({ flavor: 'vllm' });
    const gateway = await gatewayWith({
      backends: [backendFor('loading', loading, { health: { intervalMs: 100 } }), backendFor('ready', ready)],
      models: [
        {
          name: 'm',
          targets: [
            { backend: 'loading', model: 'x' },
            { backend: 'ready', model: 'Qwen/Qwen3-8B' },
          ],
        },
      ],
    });
    for (let index = 0; index < 10; index++) expect((await chat(gateway)).headers.get('x-switchyard-backend')).toBe('ready');
    expect(loading.stats().requests).toBe(0);
    loading.setLoading(false);
    await waitFor(async () => (await chat(gateway)).headers.get('x-switchyard-backend') === 'loading', 3_000, 'the loaded backend to be used');
  });
});

describe('load reports', () => {
  it("reads vLLM's per-response endpoint-load-metrics without scraping", async () => {
    const vllm = await sim({ flavor: 'vllm', ttftMs: 300 });
    const gateway = await gatewayWith({
      backends: [backendFor('v', vllm, { loadReport: true, scrape: { intervalMs: 0 } })],
      models: [{ name: 'm', targets: [{ backend: 'v', model: 'Qwen/Qwen3-8B' }] }],
    });
    const admin = async () =>
      (
        (await (await fetch(`${gateway.url}/admin/backends`)).json()) as {
          backends: Array<{ load: { runtimeQueued: number | null; kvCacheUsage: number | null; scrapeAgeMs: number | null } }>;
        }
      ).backends[0];
    expect((await admin())?.load.runtimeQueued).toBeNull(); // nothing scraped
    expect((await chat(gateway)).status).toBe(200);
    expect(vllm.stats().lastRequest?.headers['endpoint-load-metrics-format']).toBe('TEXT');
    const after = await admin();
    expect(after?.load.runtimeQueued).toBe(0);
    expect(after?.load.kvCacheUsage).toEqual(expect.any(Number));
    expect(after?.load.scrapeAgeMs).toBeLessThan(5_000);
  });
});
