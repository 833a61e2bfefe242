// Prometheus text of each runtime, with its real metric names, label sets and number
// formatting, so the gateway's scrapers are tested against what they will parse in
// production: vLLM via prometheus_client (labels sorted, floats as "1.0"), llama.cpp
// via a C++ stream (no labels, 6 significant digits, "1.23457e+06").

import type { SimView } from './flavor.ts';
import type { Histogram, MetricsState } from './metrics-state.ts';

/** Our own counter; the real runtimes lack it (the gateway's cancellation tests read it). */
export const CANCELLED_METRIC = 'switchyard_sim_requests_cancelled_total';

/** prometheus_client's floatToGoString: integral values keep a ".0". */
export function pythonFloat(value: number): string {
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  if (Number.isNaN(value)) return 'NaN';
  return Number.isInteger(value) ? value.toFixed(1) : String(value);
}

/** What `std::ostream << double` prints by default (%g, 6 significant digits). */
export function cppDouble(value: number): string {
  if (value === 0) return '0';
  if (!Number.isFinite(value)) return Number.isNaN(value) ? 'nan' : value > 0 ? 'inf' : '-inf';
  const exponent = Math.floor(Math.log10(Math.abs(Number(value.toPrecision(6)))));
  if (exponent < -4 || exponent >= 6) {
    const [mantissa = '0', power = '0'] = value.toExponential(5).split('e');
    const trimmed = mantissa.includes('.') ? mantissa.replace(/0+$/, '').replace(/\.$/, '') : mantissa;
    const sign = power.startsWith('-') ? '-' : '+';
    const digits = power.replace(/^[-+]/, '').padStart(2, '0');
    return `${trimmed}e${sign}${digits}`;
  }
  const fixed = value.toFixed(Math.max(0, 5 - exponent));
  return fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function family(lines: string[], name: string, type: string, help: string): void {
  lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
}

export function renderVllmMetrics(state: MetricsState, view: SimView): string {
  const model = escapeLabel(view.options.model);
  // prometheus_client sorts label names: engine < finished_reason < le < model_name.
  const labels = `{engine="0",model_name="${model}"}`;
  const lines: string[] = [];
  const gauge = (name: string, help: string, value: number): void => {
    family(lines, name, 'gauge', help);
    lines.push(`${name}${labels} ${pythonFloat(value)}`);
  };
  const counter = (name: string, help: string, value: number): void => {
    family(lines, name, 'counter', help);
    lines.push(`${name}${labels} ${pythonFloat(value)}`);
  };
  const histogram = (name: string, help: string, data: Histogram): void => {
    family(lines, name, 'histogram', help);
    let cumulative = 0;
    for (let i = 0; i <= data.bounds.length; i++) {
      cumulative += data.counts[i] ?? 0;
      const bound = i < data.bounds.length ? pythonFloat(data.bounds[i] ?? 0) : '+Inf';
      lines.push(`${name}_bucket{engine="0",le="${bound}",model_name="${model}"} ${pythonFloat(cumulative)}`);
    }
    lines.push(`${name}_count${labels} ${pythonFloat(data.count)}`);
    lines.push(`${name}_sum${labels} ${pythonFloat(data.sum)}`);
  };

  const kvUsage = Math.min(1, view.liveTokens / view.options.kvCacheTokens);
  gauge('vllm:num_requests_running', 'Number of requests in model execution batches.', view.running);
  gauge('vllm:num_requests_waiting', 'Number of requests waiting to be processed.', view.waiting);
  gauge('vllm:kv_cache_usage_perc', 'KV-cache usage. 1 means 100 percent usage.', kvUsage);
  counter('vllm:prefix_cache_queries_total', 'Prefix cache queries, in terms of number of queried tokens.', state.prefixQueries);
  counter('vllm:prefix_cache_hits_total', 'Prefix cache hits, in terms of number of cached tokens.', state.prefixHits);
  counter('vllm:num_preemptions_total', 'Cumulative number of preemption from the engine.', 0);
  counter('vllm:prompt_tokens_total', 'Number of prefill tokens processed.', state.promptTokens);
  counter('vllm:generation_tokens_total', 'Number of generation tokens processed.', state.generationTokens);
  family(lines, 'vllm:request_success_total', 'counter', 'Count of successfully processed requests.');
  for (const reason of ['stop', 'length', 'abort', 'error'] as const) {
    lines.push(`vllm:request_success_total{engine="0",finished_reason="${reason}",model_name="${model}"} ${pythonFloat(state.success[reason])}`);
  }
  histogram('vllm:time_to_first_token_seconds', 'Histogram of time to first token in seconds.', state.ttft);
  histogram('vllm:inter_token_latency_seconds', 'Histogram of inter-token latency in seconds.', state.interToken);
  histogram('vllm:e2e_request_latency_seconds', 'Histogram of e2e request latency in seconds.', state.e2e);
  histogram('vllm:request_queue_time_seconds', 'Histogram of time spent in WAITING phase for request.', state.queue);
  family(lines, CANCELLED_METRIC, 'counter', 'Requests cancelled because the client went away (simulator only).');
  lines.push(`${CANCELLED_METRIC} ${pythonFloat(state.cancelled)}`);
  return `${lines.join('\n')}\n`;
}

export function renderLlamacppMetrics(state: MetricsState, view: SimView): string {
  // Reading the gauges resets them, exactly like a scrape of llama-server does.
  const throughput = state.takeThroughput();
  const lines: string[] = [];
  const metric = (name: string, type: string, help: string, value: number): void => {
    lines.push(`# HELP llamacpp:${name} ${help}`, `# TYPE llamacpp:${name} ${type}`, `llamacpp:${name} ${cppDouble(value)}`);
  };
  // Names, help texts and order as served by the release recorded in test/fixtures/llamacpp.
  metric('prompt_tokens_total', 'counter', 'Number of prompt tokens processed, excluding cached tokens', state.promptTokensProcessed);
  metric('prompt_tokens_cached_total', 'counter', 'Number of prompt tokens reused from the cache', state.prefixHits);
  metric('prompt_seconds_total', 'counter', 'Total time spent processing prompts', state.promptSeconds);
  metric('tokens_predicted_total', 'counter', 'Number of generation tokens processed', state.generationTokens);
  metric('tokens_predicted_seconds_total', 'counter', 'Total time spent generating tokens', state.predictedSeconds);
  metric('n_decode_total', 'counter', 'Total number of llama_decode() calls, excluding speculative decoding and multimodal decoding', state.decodeCalls);
  metric('n_tokens_max', 'counter', 'Largest observed sequence length (prompt + generation)', state.tokensMax);
  metric('spec_decode_num_draft_tokens_total', 'counter', 'Speculative: Total draft tokens generated', 0);
  metric('spec_decode_num_accepted_tokens_total', 'counter', 'Speculative: Total draft tokens accepted by the target model', 0);
  metric('spec_decode_num_drafts_total', 'counter', 'Speculative: Total speculative decoding verification steps', 0);
  metric('prompt_tokens_seconds', 'gauge', 'Average prompt throughput in tokens/s', throughput.promptPerSecond);
  metric('predicted_tokens_seconds', 'gauge', 'Average generation throughput in tokens/s', throughput.predictedPerSecond);
  metric('requests_processing', 'gauge', 'Number of requests processing', view.running);
  metric('requests_deferred', 'gauge', 'Number of requests deferred', view.waiting);
  metric('n_busy_slots_per_decode', 'gauge', 'Average number of busy slots per llama_decode() call', state.busySlotsTotal / Math.max(state.decodeCalls, 1));
  lines.push(
    `# HELP ${CANCELLED_METRIC} Requests cancelled because the client went away (simulator only).`,
    `# TYPE ${CANCELLED_METRIC} counter`,
    `${CANCELLED_METRIC} ${cppDouble(state.cancelled)}`,
  );
  return `${lines.join('\n')}\n`;
}
