/**
 * Hot-path counters and histograms that a prom-client `Registry` exposes
 * exactly like prom-client's own Counter and Histogram.
 *
 * Why: prom-client 15 caches nothing behind `labels(...)`; every `inc()` or
 * `observe()` on a child re-hashes the label object and a histogram also loops
 * over its buckets. Here a label combination resolves once to a series object
 * (nested Maps, one level per label, no string building), and recording on it
 * is a number add (counter) or a binary search over the bounds plus adds
 * (histogram). Nothing is allocated per call.
 *
 * Exposition is prom-client's: `get()` / `getForPromString()` return the same
 * shapes (same key order, same label objects, cumulative buckets, `+Inf`,
 * `_sum`, `_count`), so `registry.metrics()` and `getMetricsAsJSON()` print
 * the same bytes. A series appears once it has been recorded on, in the order
 * of first use (prom-client's insertion order), and `reset()` drops every
 * series from the output. Series objects stay valid across `reset()`: the
 * next record on one puts it back, from zero, so callers may hold them.
 *
 * Validation matches prom-client's: counters refuse negative and infinite
 * increments (NaN is added, as prom-client does), histograms refuse
 * non-finite values, and a refused record leaves no series behind.
 *
 * That contract is prom-client's internal one (what `Registry` calls on a
 * metric, the shapes `get()` returns), not its public API, so package.json
 * pins prom-client to one exact version: moving it means re-running the
 * exposition-equivalence tests (test/unit/metrics) against the new version.
 */
import { format } from 'node:util';
import type { OpenMetricsContentType, PrometheusContentType, Registry } from 'prom-client';

type AnyRegistry = Registry<PrometheusContentType> | Registry<OpenMetricsContentType>;

type Labels = Record<string, string>;

const metricNamePattern = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelNamePattern = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** Nested Maps go one level per label; five covers every metric here. */
const maxLabels = 5;

interface Series {
  /** Recorded on since the last reset, so it is in the metric's output. */
  listed: boolean;
  readonly labels: Labels;
  clear(): void;
}

export interface FastMetricConfig {
  name: string;
  help: string;
  /** One to five label names; every series has a value for each. */
  labelNames: readonly string[];
  /** Registries to register with (none: unregistered, e.g. in tests). */
  registers?: readonly AnyRegistry[];
}

/** A labelled metric whose series are found through nested Maps, one level per label. */
abstract class FastMetric<S extends Series> {
  name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  readonly aggregator = 'sum';
  abstract readonly type: 'counter' | 'histogram';

  /** Series in order of first record since the last reset (prom-client's hashMap order). */
  protected listed: S[] = [];
  private readonly depth: number;
  private readonly root = new Map<string, unknown>();

  constructor(config: FastMetricConfig) {
    if (!metricNamePattern.test(config.name)) throw new Error('Invalid metric name');
    if (!config.help) throw new Error('Missing mandatory help parameter');
    const labelNames = [...config.labelNames];
    if (labelNames.length < 1 || labelNames.length > maxLabels) throw new Error(`${config.name}: between 1 and ${maxLabels} label names`);
    if (!labelNames.every((label) => labelNamePattern.test(label))) throw new Error('Invalid label name');
    if (new Set(labelNames).size !== labelNames.length) throw new Error(`${config.name}: duplicate label name`);
    this.name = config.name;
    this.help = config.help;
    this.labelNames = labelNames;
    this.depth = labelNames.length;
  }

  /** Registers with each registry; called by subclasses once they are fully built. */
  protected register(registers: readonly AnyRegistry[] | undefined): void {
    // The registry only needs name, help, type, aggregator, get() and reset().
    for (const registry of registers ?? []) registry.registerMetric(this as never);
  }

  /**
   * The series for these label values (in labelNames order), made on first
   * use. Finding one records nothing: it appears in the output once recorded on.
   */
  series(v0: string, v1?: string, v2?: string, v3?: string, v4?: string): S {
    const root = this.root;
    let found: unknown;
    switch (this.depth) {
      case 1:
        found = root.get(v0);
        break;
      case 2:
        found = (root.get(v0) as Map<string, unknown> | undefined)?.get(v1 as string);
        break;
      case 3:
        found = (root.get(v0) as Map<string, Map<string, unknown>> | undefined)?.get(v1 as string)?.get(v2 as string);
        break;
      case 4:
        found = (root.get(v0) as Map<string, Map<string, Map<string, unknown>>> | undefined)
          ?.get(v1 as string)
          ?.get(v2 as string)
          ?.get(v3 as string);
        break;
      default:
        found = (root.get(v0) as Map<string, Map<string, Map<string, Map<string, unknown>>>> | undefined)
          ?.get(v1 as string)
          ?.get(v2 as string)
          ?.get(v3 as string)
          ?.get(v4 as string);
    }
    return (found as S | undefined) ?? this.create([v0, v1, v2, v3, v4]);
  }

  /** prom-client's `labels(...values)`: the series, which has `inc` / `observe`. */
  labels(...values: string[]): S {
    if (values.length !== this.depth) {
      throw new Error(`Invalid number of arguments (${values.length}): "${values.join(', ')}" for label names (${this.depth}): "${this.labelNames.join(', ')}".`);
    }
    return this.series(values[0] as string, values[1], values[2], values[3], values[4]);
  }

  /** Drops every series from the output (prom-client's reset); held series stay usable. */
  reset(): void {
    for (const series of this.listed) series.clear();
    this.listed = [];
  }

  /** Puts a series into the output; called on its first record since a reset. */
  list(series: S): void {
    series.listed = true;
    this.listed.push(series);
  }

  protected abstract make(labels: Labels): S;

  private create(values: (string | undefined)[]): S {
    const labels: Labels = {};
    for (let i = 0; i < this.depth; i++) {
      const value = values[i];
      if (typeof value !== 'string') throw new Error(`${this.name}: expected ${this.depth} label values (${this.labelNames.join(', ')})`);
      labels[this.labelNames[i] as string] = value;
    }
    let map = this.root;
    for (let i = 0; i < this.depth - 1; i++) {
      const key = values[i] as string;
      let next = map.get(key) as Map<string, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        map.set(key, next);
      }
      map = next;
    }
    const series = this.make(labels);
    map.set(values[this.depth - 1] as string, series);
    return series;
  }
}

/** One label combination of a FastCounter. */
export class CounterSeries implements Series {
  value = 0;
  listed = false;
  readonly labels: Labels;
  private readonly owner: FastCounter;

  constructor(owner: FastCounter, labels: Labels) {
    this.owner = owner;
    this.labels = labels;
  }

  /** Adds `value` (default 1). Throws on negative or infinite increments, as prom-client does. */
  inc(value?: number): void {
    let by = value === undefined ? 1 : value;
    if (!(by >= 0 && by < Infinity)) by = checkIncrement(by);
    if (!this.listed) this.owner.list(this);
    this.value += by;
  }

  clear(): void {
    this.value = 0;
    this.listed = false;
  }
}

/** prom-client's checks for increments outside [0, Infinity): NaN and null pass, the rest throw. */
function checkIncrement(value: unknown): number {
  if (value === null) return 1;
  if (typeof value === 'number' && Number.isNaN(value)) return value;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${format(value)}`);
  throw new Error('It is not possible to decrease a counter');
}

/** A labelled counter, exposed like prom-client's Counter. */
export class FastCounter extends FastMetric<CounterSeries> {
  readonly type = 'counter';

  constructor(config: FastMetricConfig) {
    super(config);
    this.register(config.registers);
  }

  protected make(labels: Labels): CounterSeries {
    return new CounterSeries(this, labels);
  }

  /** prom-client Counter.get(): `{ help, name, type, values: [{ value, labels }], aggregator }`. */
  async get(): Promise<{ help: string; name: string; type: 'counter'; values: { value: number; labels: Labels }[]; aggregator: string }> {
    return {
      help: this.help,
      name: this.name,
      type: this.type,
      values: this.listed.map((series) => ({ value: series.value, labels: series.labels })),
      aggregator: this.aggregator,
    };
  }
}

/** One label combination of a FastHistogram. */
export class HistogramSeries implements Series {
  /** Observations per bucket, not cumulative; values above the last bound count only in `count`. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  listed = false;
  readonly labels: Labels;
  private readonly bounds: Float64Array;
  private readonly owner: FastHistogram;

  constructor(owner: FastHistogram, bounds: Float64Array, labels: Labels) {
    this.owner = owner;
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length);
    this.labels = labels;
  }

  /** Records one value: into the first bucket whose bound is >= value. Throws on non-finite values, as prom-client does. */
  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${format(value)}`);
    const bounds = this.bounds;
    let low = 0;
    let high = bounds.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (value <= (bounds[mid] as number)) high = mid;
      else low = mid + 1;
    }
    if (!this.listed) this.owner.list(this);
    this.sum += value;
    this.count += 1;
    if (low < bounds.length) this.counts[low] = (this.counts[low] as number) + 1;
  }

  clear(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
    this.listed = false;
  }
}

export interface FastHistogramConfig extends FastMetricConfig {
  /** Upper bounds, strictly increasing and finite (`+Inf` is implied). */
  buckets: readonly number[];
}

/** One line's worth of a histogram, in prom-client's shape before `get()` splays the labels. */
interface HistogramValue {
  labels: { le?: number | string };
  sharedLabels: Labels;
  value: number;
  metricName: string;
  exemplar: null | undefined;
}

/** A labelled histogram, exposed like prom-client's Histogram (without exemplars). */
export class FastHistogram extends FastMetric<HistogramSeries> {
  readonly type = 'histogram';
  readonly upperBounds: readonly number[];
  private readonly bounds: Float64Array;

  constructor(config: FastHistogramConfig) {
    super(config);
    if (config.labelNames.includes('le')) throw new Error('le is a reserved label keyword');
    const buckets = [...config.buckets];
    if (buckets.length === 0 || !buckets.every((bound, index) => Number.isFinite(bound) && (index === 0 || bound > (buckets[index - 1] as number)))) {
      throw new Error(`${config.name}: buckets must be finite and strictly increasing`);
    }
    this.upperBounds = Object.freeze(buckets);
    this.bounds = Float64Array.from(buckets);
    this.register(config.registers);
  }

  protected make(labels: Labels): HistogramSeries {
    return new HistogramSeries(this, this.bounds, labels);
  }

  /** prom-client Histogram.getForPromString(): buckets (cumulative), +Inf, _sum, _count per series. */
  async getForPromString(): Promise<{ name: string; help: string; type: 'histogram'; values: HistogramValue[]; aggregator: string }> {
    const bucketName = `${this.name}_bucket`;
    const sumName = `${this.name}_sum`;
    const countName = `${this.name}_count`;
    const bounds = this.upperBounds;
    const values: HistogramValue[] = [];
    for (const series of this.listed) {
      const shared = series.labels;
      let cumulative = 0;
      for (let i = 0; i < bounds.length; i++) {
        cumulative += series.counts[i] as number;
        values.push({ labels: { le: bounds[i] as number }, sharedLabels: shared, value: cumulative, metricName: bucketName, exemplar: null });
      }
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: shared, value: series.count, metricName: bucketName, exemplar: null },
        { labels: {}, sharedLabels: shared, value: series.sum, metricName: sumName, exemplar: undefined },
        { labels: {}, sharedLabels: shared, value: series.count, metricName: countName, exemplar: undefined },
      );
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** prom-client Histogram.get(): as above with the series' labels merged into each line's labels. */
  async get(): Promise<{
    name: string;
    help: string;
    type: 'histogram';
    values: { value: number; metricName: string; exemplar: null | undefined; labels: Labels }[];
    aggregator: string;
  }> {
    const data = await this.getForPromString();
    return {
      ...data,
      values: data.values.map(({ labels, sharedLabels, ...rest }) => ({ ...rest, labels: Object.assign(labels as Labels, sharedLabels) })),
    };
  }
}
