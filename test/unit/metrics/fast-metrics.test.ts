import { Counter, Histogram, Registry, type RegistryContentType } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { FastCounter, FastHistogram } from '../../../src/metrics/fast.ts';
import { GatewayMetrics, latencyBuckets } from '../../../src/metrics/metrics.ts';
import { newRecord } from '../../../src/proxy/record.ts';

/** prom-client's own metrics and ours, on two registries, fed the same records. */
function pair(contentType: RegistryContentType = Registry.PROMETHEUS_CONTENT_TYPE) {
  const registry = () => {
    const made = new Registry();
    // Typed as Prometheus text throughout; at run time this may be OpenMetrics.
    made.setContentType(contentType as typeof Registry.PROMETHEUS_CONTENT_TYPE);
    return made;
  };
  const reference = registry();
  const fast = registry();
  const counter = (name: string, labelNames: string[]) => ({
    reference: new Counter({ name, help: `help of ${name} with \\ and\nnewline`, labelNames, registers: [reference] }),
    fast: new FastCounter({ name, help: `help of ${name} with \\ and\nnewline`, labelNames, registers: [fast] }),
  });
  const histogram = (name: string, labelNames: string[], buckets: number[]) => ({
    reference: new Histogram({ name, help: `help of ${name}`, labelNames, buckets, registers: [reference] }),
    fast: new FastHistogram({ name, help: `help of ${name}`, labelNames, buckets, registers: [fast] }),
  });
  return { reference, fast, counter, histogram };
}

async function expectSameExposition(reference: Registry, fast: Registry): Promise<string> {
  const text = await fast.metrics();
  const expected = await reference.metrics();
  // Byte for byte, order included (series appear in order of first use in both).
  expect(text).toBe(expected);
  expect(text.split('\n').sort()).toEqual(expected.split('\n').sort());
  expect(await fast.getMetricsAsJSON()).toStrictEqual(await reference.getMetricsAsJSON());
  // (In OpenMetrics mode prom-client renames counters in place, so lookups by name fail for both.)
  if ((reference.contentType as RegistryContentType) === Registry.OPENMETRICS_CONTENT_TYPE) return text;
  for (const metric of await reference.getMetricsAsJSON()) {
    expect(await fast.getSingleMetricAsString(metric.name)).toBe(await reference.getSingleMetricAsString(metric.name));
  }
  return text;
}

const awkward = 'we"ird\\value\nwith newline';
const overhead = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];

describe('FastCounter', () => {
  it('prints what prom-client Counter prints: label sets, escaping, increments', async () => {
    const { reference, fast, counter } = pair();
    const requests = counter('test_requests_total', ['model', 'backend', 'endpoint', 'status_class', 'cache']);
    const tokens = counter('test_tokens_total', ['model', 'type']);
    const records: [string[], number | undefined][] = [
      [['chat', 'sim', 'chat', '2xx', 'bypass'], undefined],
      [['chat', 'gpu-1', 'chat', '2xx', 'hit'], 1],
      [[awkward, 'sim', 'completion', '4xx', 'miss'], undefined],
      [['chat', 'sim', 'chat', '2xx', 'bypass'], 2.5],
      [['chat', 'sim', 'chat', '2xx', 'bypass'], 0],
      [['', 'sim', 'embedding', 'cancelled', 'bypass'], 0],
      [[awkward, 'sim', 'completion', '4xx', 'miss'], 0.1],
      [[awkward, 'sim', 'completion', '4xx', 'miss'], 0.2],
    ];
    for (const [labels, value] of records) {
      requests.reference.labels(...labels).inc(value);
      const [a, b, c, d, e] = labels as [string, string, string, string, string];
      requests.fast.series(a, b, c, d, e).inc(value);
    }
    for (const [model, type, value] of [
      ['chat', 'prompt', 42],
      ['chat', 'completion', 20],
      [awkward, 'prompt', 0],
      ['chat', 'prompt', 1e21],
      ['x', 'y', 1e-7],
    ] as const) {
      tokens.reference.labels(model, type).inc(value);
      tokens.fast.labels(model, type).inc(value);
    }
    const text = await expectSameExposition(reference, fast);
    expect(text).toContain('test_requests_total{model="we\\"ird\\\\value\\nwith newline",backend="sim",endpoint="completion",status_class="4xx",cache="miss"} 1.3');
    expect(text).toContain('test_requests_total{model="chat",backend="sim",endpoint="chat",status_class="2xx",cache="bypass"} 3.5');
    expect(text).toContain('test_requests_total{model="",backend="sim",endpoint="embedding",status_class="cancelled",cache="bypass"} 0');
  });

  it('shows no series until one is recorded on, and refused increments leave none behind', async () => {
    const { reference, fast, counter } = pair();
    const cost = counter('test_cost_total', ['model', 'backend']);
    fast.getSingleMetric('test_cost_total');
    cost.fast.series('never', 'used');
    cost.fast.labels('also', 'unused');
    expect(await fast.metrics()).toBe(await reference.metrics());
    expect(await fast.metrics()).not.toContain('never');

    for (const bad of [-1, Infinity, -Infinity]) {
      let expected: unknown;
      try {
        cost.reference.labels('chat', 'sim').inc(bad);
      } catch (error) {
        expected = error;
      }
      expect(expected).toBeInstanceOf(Error);
      expect(() => cost.fast.series('chat', 'sim').inc(bad)).toThrow(expected as Error);
    }
    await expectSameExposition(reference, fast);
    expect(await fast.metrics()).not.toContain('chat');

    // NaN is added, as prom-client adds it (and prints "Nan").
    cost.reference.labels('nan', 'sim').inc(Number.NaN);
    cost.fast.series('nan', 'sim').inc(Number.NaN);
    expect(await expectSameExposition(reference, fast)).toContain('test_cost_total{model="nan",backend="sim"} Nan');
  });

  it('refuses the wrong number of label values', () => {
    const { counter } = pair();
    const cost = counter('test_cost_total', ['model', 'backend']);
    expect(() => cost.reference.labels('chat').inc()).toThrow(/Invalid number of arguments/);
    expect(() => cost.fast.labels('chat')).toThrow(/Invalid number of arguments/);
    expect(() => cost.fast.series('chat')).toThrow(/expected 2 label values/);
  });
});

describe('FastHistogram', () => {
  it('prints what prom-client Histogram prints: boundaries, +Inf, sums, counts, several label sets', async () => {
    const { reference, fast, histogram } = pair();
    const duration = histogram('test_duration_seconds', ['model', 'backend', 'stream'], latencyBuckets);
    const values = [
      ...latencyBuckets, // exactly on every boundary
      ...latencyBuckets.map((bound) => bound + 1e-9),
      ...latencyBuckets.map((bound) => bound - 1e-9),
      0,
      -0,
      -3,
      0.0001,
      119.99,
      120,
      120.0000001,
      500,
      1e9, // below the first bound, above the last (+Inf only)
    ];
    const labelSets: [string, string, string][] = [
      ['chat', 'sim', 'false'],
      ['chat', 'sim', 'true'],
      [awkward, 'gpu-1', 'false'],
    ];
    values.forEach((value, index) => {
      const labels = labelSets[index % 3] as [string, string, string];
      duration.reference.labels(...labels).observe(value);
      duration.fast.series(...labels).observe(value);
    });
    const onlyInf = ['edge', 'sim', 'true'] as const;
    duration.reference.labels(...onlyInf).observe(121);
    duration.fast.series(...onlyInf).observe(121);
    const text = await expectSameExposition(reference, fast);
    expect(text).toContain('test_duration_seconds_bucket{le="120",model="edge",backend="sim",stream="true"} 0');
    expect(text).toContain('test_duration_seconds_bucket{le="+Inf",model="edge",backend="sim",stream="true"} 1');
    expect(text).toContain('test_duration_seconds_sum{model="edge",backend="sim",stream="true"} 121');
    expect(text).toContain('test_duration_seconds_bucket{le="0.01",model="we\\"ird\\\\value\\nwith newline",backend="gpu-1",stream="false"}');
  });

  it('matches prom-client over a long random run of several histograms and counters', async () => {
    const { reference, fast, histogram, counter } = pair();
    const overheadPair = histogram('test_overhead_seconds', ['stream'], overhead);
    const tpot = histogram('test_tpot_seconds', ['model', 'backend'], [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.3, 0.6, 1.2, 2.5]);
    const decisions = counter('test_decisions_total', ['model', 'backend', 'reason']);
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
    for (let i = 0; i < 5000; i++) {
      const stream = pick(['true', 'false']);
      const value = random() < 0.3 ? pick(overhead) : random() * random() * 0.2;
      overheadPair.reference.labels(stream).observe(value);
      overheadPair.fast.series(stream).observe(value);
      const model = pick(['chat', 'embed', awkward]);
      const backend = pick(['sim', 'gpu-1', 'gpu-2']);
      const perToken = random() * 3;
      tpot.reference.labels(model, backend).observe(perToken);
      tpot.fast.series(model, backend).observe(perToken);
      const reason = pick(['least-loaded', 'affinity', 'failover:timeout']);
      decisions.reference.labels(model, backend, reason).inc();
      decisions.fast.series(model, backend, reason).inc();
    }
    await expectSameExposition(reference, fast);
  });

  it('refuses non-finite values like prom-client, leaving no series', async () => {
    const { reference, fast, histogram } = pair();
    const ttft = histogram('test_ttft_seconds', ['model'], latencyBuckets);
    for (const bad of [Number.NaN, Infinity, -Infinity]) {
      let expected: unknown;
      try {
        ttft.reference.labels('chat').observe(bad);
      } catch (error) {
        expected = error;
      }
      expect(expected).toBeInstanceOf(TypeError);
      expect(() => ttft.fast.series('chat').observe(bad)).toThrow(expected as Error);
    }
    ttft.fast.series('unused');
    await expectSameExposition(reference, fast);
    expect(await fast.metrics()).toBe('# HELP test_ttft_seconds help of test_ttft_seconds\n# TYPE test_ttft_seconds histogram\n');
  });

  it('refuses bad configuration', () => {
    expect(() => new FastHistogram({ name: 'h', help: 'h', labelNames: ['le'], buckets: [1] })).toThrow(/reserved/);
    expect(() => new FastHistogram({ name: 'h', help: 'h', labelNames: ['a'], buckets: [2, 1] })).toThrow(/increasing/);
    expect(() => new FastCounter({ name: 'bad name', help: 'h', labelNames: ['a'] })).toThrow(/Invalid metric name/);
    expect(() => new FastCounter({ name: 'c', help: 'h', labelNames: [] })).toThrow(/label names/);
    const registry = new Registry();
    new Counter({ name: 'taken', help: 'h', registers: [registry] });
    expect(() => new FastCounter({ name: 'taken', help: 'h', labelNames: ['a'], registers: [registry] })).toThrow(/already been registered/);
  });
});

describe('registry behaviour', () => {
  it('resetMetrics drops every series; held series come back from zero in order of first use', async () => {
    const { reference, fast, counter, histogram } = pair();
    const requests = counter('test_requests_total', ['model']);
    const duration = histogram('test_duration_seconds', ['model'], [0.1, 1]);
    const heldCounter = requests.fast.series('chat');
    const heldHistogram = duration.fast.series('chat');
    requests.reference.labels('chat').inc(3);
    heldCounter.inc(3);
    requests.reference.labels('embed').inc();
    requests.fast.series('embed').inc();
    duration.reference.labels('chat').observe(0.5);
    heldHistogram.observe(0.5);
    await expectSameExposition(reference, fast);

    reference.resetMetrics();
    fast.resetMetrics();
    expect(await expectSameExposition(reference, fast)).not.toContain('model=');

    requests.reference.labels('embed').inc(2);
    requests.fast.series('embed').inc(2);
    requests.reference.labels('chat').inc();
    heldCounter.inc();
    duration.reference.labels('chat').observe(0.05);
    heldHistogram.observe(0.05);
    const text = await expectSameExposition(reference, fast);
    expect(text.indexOf('model="embed"')).toBeLessThan(text.indexOf('test_requests_total{model="chat"}'));
    expect(text).toContain('test_requests_total{model="chat"} 1');
    expect(text).toContain('test_duration_seconds_count{model="chat"} 1');
  });

  it('matches with default labels and in OpenMetrics format', async () => {
    for (const contentType of [Registry.PROMETHEUS_CONTENT_TYPE, Registry.OPENMETRICS_CONTENT_TYPE] as const) {
      const { reference, fast, counter, histogram } = pair(contentType);
      for (const registry of [reference, fast]) registry.setDefaultLabels({ instance: 'gw"1' });
      const requests = counter('test_requests_total', ['model', 'backend']);
      const duration = histogram('test_duration_seconds', ['model'], [0.1, 1]);
      requests.reference.labels('chat', 'sim').inc(2);
      requests.fast.series('chat', 'sim').inc(2);
      duration.reference.labels(awkward).observe(0.1);
      duration.fast.series(awkward).observe(0.1);
      const text = await expectSameExposition(reference, fast);
      expect(text.endsWith('# EOF\n')).toBe(contentType === Registry.OPENMETRICS_CONTENT_TYPE);
      expect(text).toContain('instance="gw\\"1"');
    }
  });
});

describe('GatewayMetrics on the fast path', () => {
  it('records a successful non-streaming answer as before', async () => {
    const registry = new Registry();
    const metrics = new GatewayMetrics(registry, { byId: new Map() } as never, {} as never);
    const record = Object.assign(newRecord('r1', 0), {
      endpoint: 'chat' as const,
      model: 'chat',
      backend: 'sim',
      status: 200,
      upstreamMs: 99.5,
      attempts: 1,
      usage: { prompt_tokens: 42, completion_tokens: 20, total_tokens: 62 },
      routeReason: 'least-loaded',
      cache: 'bypass' as const,
    });
    metrics.observe(record, 100);
    metrics.observe(record, 2500);
    const text = await registry.metrics();
    for (const line of [
      'switchyard_requests_total{model="chat",backend="sim",endpoint="chat",status_class="2xx",cache="bypass"} 2',
      'switchyard_cache_requests_total{model="chat",result="bypass"} 2',
      'switchyard_routing_decisions_total{model="chat",backend="sim",reason="least-loaded"} 2',
      'switchyard_tokens_total{model="chat",backend="sim",type="prompt"} 84',
      'switchyard_tokens_total{model="chat",backend="sim",type="completion"} 40',
      'switchyard_request_duration_seconds_bucket{le="0.1",model="chat",backend="sim",stream="false"} 1',
      'switchyard_request_duration_seconds_bucket{le="2.5",model="chat",backend="sim",stream="false"} 2',
      'switchyard_request_duration_seconds_bucket{le="+Inf",model="chat",backend="sim",stream="false"} 2',
      'switchyard_request_duration_seconds_sum{model="chat",backend="sim",stream="false"} 2.6',
      'switchyard_gateway_overhead_seconds_count{stream="false"} 2',
    ]) {
      expect(text.split('\n')).toContain(line);
    }
    // Not recorded: no series (streamed-only time to first token, cost 0, no failovers).
    for (const name of [
      'switchyard_time_to_first_token_seconds_bucket',
      'switchyard_time_per_output_token_seconds_bucket',
      'switchyard_cost_total{',
      'switchyard_failovers_total{',
      'switchyard_refused_requests_total{',
    ]) {
      expect(text).not.toContain(name);
    }
  });

  it('counts failovers before the last attempt, as failures.slice(0, attempts - 1) did', async () => {
    const registry = new Registry();
    const metrics = new GatewayMetrics(registry, { byId: new Map() } as never, {} as never);
    const failures = ['a:timeout', 'b:connect', 'c'];
    for (const attempts of [0, 1, 2, 3, 4, 9]) {
      metrics.observe(Object.assign(newRecord(`r${attempts}`, 0), { model: 'chat', backend: 'sim', status: 200, attempts, failures }), 10);
    }
    const json = (await registry.getMetricsAsJSON()).find((metric) => metric.name === 'switchyard_failovers_total');
    const counts = Object.fromEntries((json?.values ?? []).map((value) => [`${value.labels.backend}:${value.labels.reason}`, value.value]));
    // attempts 0 → slice(0, -1): a, b; 2 → a; 3 → a, b; 4 and 9 → a, b, c.
    expect(counts).toEqual({ 'a:timeout': 5, 'b:connect': 4, 'c:error': 2 });
  });
});
