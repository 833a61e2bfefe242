import { describe, expect, it } from 'vitest';
import type { SimView } from '../../../src/sim/flavor.ts';
import { MetricsState } from '../../../src/sim/metrics-state.ts';
import { cppDouble, pythonFloat, renderLlamacppMetrics, renderVllmMetrics } from '../../../src/sim/metrics-text.ts';
import { resolveOptions } from '../../../src/sim/options.ts';

function view(flavor: 'vllm' | 'llamacpp', running = 0, waiting = 0, liveTokens = 0): SimView {
  return { options: resolveOptions({ flavor, model: 'my"model' }), running, waiting, liveTokens, slots: () => [] };
}

describe('metrics text', () => {
  it('formats numbers like prometheus_client and like a C++ stream', () => {
    expect(pythonFloat(3)).toBe('3.0');
    expect(pythonFloat(0.25)).toBe('0.25');
    expect(pythonFloat(Infinity)).toBe('+Inf');
    expect(cppDouble(0)).toBe('0');
    expect(cppDouble(42)).toBe('42');
    expect(cppDouble(0.5)).toBe('0.5');
    expect(cppDouble(123.456789)).toBe('123.457');
    expect(cppDouble(1234567)).toBe('1.23457e+06');
    expect(cppDouble(0.00001234)).toBe('1.234e-05');
  });

  it('renders vLLM metrics with sorted labels, escaped model names and cumulative buckets', () => {
    const state = new MetricsState();
    state.recordPrefill({ promptTokens: 10, cachedTokens: 4, queueMs: 0, prefillMs: 30, busySlots: 1 });
    state.recordFinish({ generated: 5, reason: 'stop', e2eMs: 600, decodeMs: 100, interTokenMs: 25, busySlots: 1, contextTokens: 15 });
    const text = renderVllmMetrics(state, view('vllm', 3, 2, 8192 * 4));
    expect(text).toContain('vllm:num_requests_running{engine="0",model_name="my\\"model"} 3.0');
    expect(text).toContain('vllm:num_requests_waiting{engine="0",model_name="my\\"model"} 2.0');
    expect(text).toContain('vllm:kv_cache_usage_perc{engine="0",model_name="my\\"model"} 0.5');
    expect(text).toContain('vllm:prefix_cache_hits_total{engine="0",model_name="my\\"model"} 4.0');
    expect(text).toContain('# TYPE vllm:time_to_first_token_seconds histogram');
    expect(text).toContain('vllm:time_to_first_token_seconds_bucket{engine="0",le="0.02",model_name="my\\"model"} 0.0');
    expect(text).toContain('vllm:time_to_first_token_seconds_bucket{engine="0",le="0.04",model_name="my\\"model"} 1.0');
    expect(text).toContain('vllm:inter_token_latency_seconds_count{engine="0",model_name="my\\"model"} 4.0');
    expect(text).toContain('vllm:e2e_request_latency_seconds_bucket{engine="0",le="+Inf",model_name="my\\"model"} 1.0');
    expect(text).toContain('switchyard_sim_requests_cancelled_total 0.0');
  });

  it('renders llama.cpp metrics without labels and resets the throughput gauges per scrape', () => {
    const state = new MetricsState();
    state.recordPrefill({ promptTokens: 100, cachedTokens: 0, queueMs: 0, prefillMs: 50, busySlots: 1 });
    state.recordFinish({ generated: 10, reason: 'length', e2eMs: 150, decodeMs: 100, interTokenMs: 10, busySlots: 1, contextTokens: 110 });
    const first = renderLlamacppMetrics(state, view('llamacpp', 1, 4));
    expect(first).toContain('llamacpp:prompt_tokens_seconds 2000\n');
    expect(first).toContain('llamacpp:predicted_tokens_seconds 100\n');
    expect(first).toContain('llamacpp:requests_processing 1\n');
    expect(first).toContain('llamacpp:requests_deferred 4\n');
    expect(first).toContain('llamacpp:n_tokens_max 110\n');
    expect(first).toContain('# TYPE llamacpp:tokens_predicted_total counter');
    const second = renderLlamacppMetrics(state, view('llamacpp'));
    expect(second).toContain('llamacpp:prompt_tokens_seconds 0\n');
    expect(second).toContain('llamacpp:predicted_tokens_seconds 0\n');
    expect(second).toContain('llamacpp:tokens_predicted_total 10\n');
  });
});
