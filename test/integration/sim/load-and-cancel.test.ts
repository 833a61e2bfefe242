import { describe, expect, it } from 'vitest';
import { chatBody, eventually, metricValue, postJson, readUntil, useSimulator } from './sim-helpers.ts';

async function scrape(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

describe('simulator load, queueing and cancellation', () => {
  it('queues beyond maxConcurrency (FIFO) and shows running/waiting in stats and vLLM metrics', async () => {
    const sim = await useSimulator({ flavor: 'vllm', maxConcurrency: 2, ttftMs: 250 });
    const order: number[] = [];
    const requests = [0, 1, 2, 3].map((index) =>
      postJson(sim, '/v1/chat/completions', chatBody({ max_tokens: 50 })).then(async (response) => {
        await response.text();
        order.push(index);
      }),
    );
    await eventually(() => sim.stats().running === 2 && sim.stats().waiting === 2);
    const text = await scrape(sim.url);
    expect(metricValue(text, 'vllm:num_requests_running')).toBe(2);
    expect(metricValue(text, 'vllm:num_requests_waiting')).toBe(2);
    expect(metricValue(text, 'vllm:kv_cache_usage_perc')).toBeGreaterThan(0);
    expect(text).toContain('vllm:num_requests_running{engine="0",model_name="sim-model"} 2.0');
    await Promise.all(requests);
    expect(order.slice(0, 2).sort()).toEqual([0, 1]);
    expect(order.slice(2).sort()).toEqual([2, 3]);
    expect(sim.stats()).toMatchObject({ requests: 4, completed: 4, running: 0, waiting: 0 });
    const after = await scrape(sim.url);
    expect(metricValue(after, 'vllm:generation_tokens_total')).toBe(200);
    expect(after).toContain('vllm:request_success_total{engine="0",finished_reason="length",model_name="sim-model"} 4.0');
    expect(metricValue(after, 'vllm:request_queue_time_seconds_count')).toBe(4);
  });

  it('shows processing/deferred in llama.cpp metrics and resets the throughput gauges on scrape', async () => {
    const sim = await useSimulator({ flavor: 'llamacpp', maxConcurrency: 1, ttftMs: 200 });
    const first = postJson(sim, '/v1/chat/completions', chatBody()).then((response) => response.text());
    const second = postJson(sim, '/v1/chat/completions', chatBody()).then((response) => response.text());
    await eventually(() => sim.stats().waiting === 1);
    const busy = await scrape(sim.url);
    expect(metricValue(busy, 'llamacpp:requests_processing')).toBe(1);
    expect(metricValue(busy, 'llamacpp:requests_deferred')).toBe(1);
    await Promise.all([first, second]);
    const done = await scrape(sim.url);
    expect(metricValue(done, 'llamacpp:tokens_predicted_total')).toBe(8);
    expect(metricValue(done, 'llamacpp:prompt_tokens_seconds')).toBeGreaterThan(0);
    expect(metricValue(done, 'llamacpp:predicted_tokens_seconds')).toBeGreaterThan(0);
    const again = await scrape(sim.url);
    expect(metricValue(again, 'llamacpp:prompt_tokens_seconds')).toBe(0);
    expect(metricValue(again, 'llamacpp:predicted_tokens_seconds')).toBe(0);
    expect(metricValue(again, 'llamacpp:tokens_predicted_total')).toBe(8);
  });

  it('cancels a stream when the client disconnects mid-stream', async () => {
    const sim = await useSimulator({ flavor: 'vllm', tokensPerSecond: 50 });
    const controller = new AbortController();
    const response = await postJson(sim, '/v1/chat/completions', chatBody({ stream: true, max_tokens: 200 }), { signal: controller.signal });
    await readUntil(response, (text) => text.split('data: ').length > 4);
    expect(sim.stats().running).toBe(1);
    controller.abort();
    await eventually(() => sim.stats().cancelled === 1 && sim.stats().running === 0);
    expect(sim.stats().completed).toBe(0);
    const text = await scrape(sim.url);
    expect(metricValue(text, 'switchyard_sim_requests_cancelled_total')).toBe(1);
    expect(text).toContain('finished_reason="abort",model_name="sim-model"} 1.0');
  });

  it('cancels before the first token: non-streamed, and a llama.cpp stream whose headers never came', async () => {
    const sim = await useSimulator({ flavor: 'llamacpp', ttftMs: 5000 });
    for (const stream of [false, true]) {
      const controller = new AbortController();
      const pending = postJson(sim, '/v1/chat/completions', chatBody({ stream }), { signal: controller.signal }).catch(() => 'aborted');
      await eventually(() => sim.stats().running === 1);
      controller.abort();
      expect(await pending).toBe('aborted');
      await eventually(() => sim.stats().running === 0);
    }
    expect(sim.stats().cancelled).toBe(2);
  });

  it('cancels a non-streamed request during slow generation', async () => {
    const sim = await useSimulator({ flavor: 'vllm', tokensPerSecond: 20 });
    const controller = new AbortController();
    const pending = postJson(sim, '/v1/chat/completions', chatBody({ max_tokens: 100 }), { signal: controller.signal }).catch(() => 'aborted');
    await eventually(() => sim.stats().running === 1);
    await new Promise((resolve) => setTimeout(resolve, 120));
    controller.abort();
    expect(await pending).toBe('aborted');
    await eventually(() => sim.stats().cancelled === 1 && sim.stats().running === 0);
  });

  it('cancels a queued request without ever giving it a slot', async () => {
    const sim = await useSimulator({ flavor: 'llamacpp', maxConcurrency: 1, ttftMs: 300 });
    const holder = postJson(sim, '/v1/chat/completions', chatBody()).then((response) => response.text());
    const controller = new AbortController();
    const queued = postJson(sim, '/v1/chat/completions', chatBody(), { signal: controller.signal }).catch(() => 'aborted');
    await eventually(() => sim.stats().waiting === 1);
    controller.abort();
    expect(await queued).toBe('aborted');
    await eventually(() => sim.stats().waiting === 0 && sim.stats().cancelled === 1);
    await holder;
    expect(sim.stats()).toMatchObject({ completed: 1, cancelled: 1, running: 0, waiting: 0 });
  });

  it('paces tokens and applies live updates (ttft, rate, slots)', async () => {
    const sim = await useSimulator({ flavor: 'vllm', maxConcurrency: 1 });
    let started = Date.now();
    await (await postJson(sim, '/v1/chat/completions', chatBody({ max_tokens: 5 }))).text();
    expect(Date.now() - started).toBeLessThan(250);
    sim.update({ ttftMs: 100, tokensPerSecond: 100 });
    started = Date.now();
    await (await postJson(sim, '/v1/chat/completions', chatBody({ max_tokens: 5, stream: true }))).text();
    // 100 ms to the first token, then 4 gaps of 10 ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(135);
    sim.update({ ttftMs: 200, tokensPerSecond: 0, maxConcurrency: 3 });
    const all = Promise.all([1, 2, 3].map(() => postJson(sim, '/v1/chat/completions', chatBody()).then((response) => response.text())));
    await eventually(() => sim.stats().running === 3);
    await all;
    expect(sim.options.maxConcurrency).toBe(3);
  });
});
