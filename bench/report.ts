/**
 * Turns the measured cells into per-scenario summaries (median and min–max
 * over repetitions, overheads paired by repetition) and a Markdown report.
 */
import type { Distribution, Failures } from './driver.ts';

export type TargetName = 'direct' | 'limit' | 'switchyard' | 'baseline';
/** `baseline`: the gateway from another checkout (--baseline-root), to compare two versions within one run. */
export const targetNames: readonly TargetName[] = ['direct', 'limit', 'switchyard', 'baseline'];

export interface ScenarioSpec {
  id: string;
  kind: 'paced' | 'closed';
  stream: boolean;
  maxTokens: number;
  /** paced: requests per second. */
  rate?: number;
  /** closed: requests in flight. */
  concurrency?: number;
  /**
   * Without: a non-deterministic body (temperature 0.7) that Switchyard's response
   * cache bypasses. `hit`: one deterministic body (temperature 0), answered from
   * the cache after the first request. `miss`: deterministic but unique bodies,
   * so every request looks up, misses, goes upstream and stores.
   */
  cache?: 'hit' | 'miss';
  description: string;
}

/** One scenario × target × repetition. */
export interface Cell {
  scenario: string;
  target: TargetName;
  rep: number;
  windowS: number;
  sent: number;
  ok: number;
  failures: Failures;
  unfinished?: number;
  maxInflight?: number;
  achievedRate?: number;
  throughput?: number;
  latency: Distribution;
  latencyFromScheduled?: Distribution;
  ttfb?: Distribution;
  lag?: Distribution;
  /** Proxy (limit or switchyard) CPU per OK request, µs; absent for direct. */
  proxyCpuUsPerReq?: number;
  /** Proxy CPU use over the window, share of one core. */
  proxyCpuShare?: number;
  simCpuUsPerReq: number;
  /** The load generator's own CPU per OK request, µs. */
  driverCpuUsPerReq: number;
  /** Simulator + load generator CPU over the window, share of one core (CPU 0 saturation check). */
  cpu0Share: number;
  proxyRssPeakMiB?: number;
  /** Requests the simulator received per OK request over the window (1 = no cache, ~0 = all hits). */
  upstreamPerReq?: number;
  /** Share of CPU 0 / CPU 1 used by processes other than ours during the window (pinned runs). */
  cpu0OtherShare?: number;
  cpu1OtherShare?: number;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

function spread(values: number[]): Spread {
  const clean = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b);
  if (clean.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, n: 0 };
  const middle = Math.floor(clean.length / 2);
  const median = clean.length % 2 === 1 ? (clean[middle] as number) : ((clean[middle - 1] as number) + (clean[middle] as number)) / 2;
  return { median, min: clean[0] as number, max: clean[clean.length - 1] as number, n: clean.length };
}

type Metric = (cell: Cell) => number | undefined;

const metrics: Record<string, Metric> = {
  p50: (cell) => cell.latency.p50,
  p90: (cell) => cell.latency.p90,
  p99: (cell) => cell.latency.p99,
  p99FromScheduled: (cell) => cell.latencyFromScheduled?.p99,
  ttfbP50: (cell) => cell.ttfb?.p50,
  ttfbP99: (cell) => cell.ttfb?.p99,
  lagP99: (cell) => cell.lag?.p99,
  throughput: (cell) => cell.throughput,
  achievedRate: (cell) => cell.achievedRate,
  proxyCpuUsPerReq: (cell) => cell.proxyCpuUsPerReq,
  proxyCpuShare: (cell) => cell.proxyCpuShare,
  cpu0Share: (cell) => cell.cpu0Share,
  simCpuUsPerReq: (cell) => cell.simCpuUsPerReq,
  driverCpuUsPerReq: (cell) => cell.driverCpuUsPerReq,
  proxyRssPeakMiB: (cell) => cell.proxyRssPeakMiB,
  errors: (cell) => cell.failures.total + (cell.unfinished ?? 0),
  upstreamPerReq: (cell) => cell.upstreamPerReq,
  cpu0OtherShare: (cell) => cell.cpu0OtherShare,
  cpu1OtherShare: (cell) => cell.cpu1OtherShare,
};

export interface TargetSummary {
  reps: number;
  metrics: Record<string, Spread>;
  errors: number;
  errorKinds: Record<string, number>;
}

export interface ScenarioSummary {
  scenario: string;
  kind: 'paced' | 'closed';
  stream: boolean;
  targets: Partial<Record<TargetName, TargetSummary>>;
  /** Paired per repetition: target − direct (ms) or target / other (ratio). */
  compare: Record<string, Spread>;
}

function byRep(cells: Cell[], scenario: string, target: TargetName): Map<number, Cell> {
  const map = new Map<number, Cell>();
  for (const cell of cells) if (cell.scenario === scenario && cell.target === target) map.set(cell.rep, cell);
  return map;
}

function paired(left: Map<number, Cell>, right: Map<number, Cell>, metric: Metric, combine: (a: number, b: number) => number): Spread {
  const values: number[] = [];
  for (const [rep, cell] of left) {
    const other = right.get(rep);
    const a = metric(cell);
    const b = other ? metric(other) : undefined;
    if (a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b)) values.push(combine(a, b));
  }
  return spread(values);
}

export function summarise(scenarios: readonly ScenarioSpec[], cells: Cell[]): ScenarioSummary[] {
  const summaries: ScenarioSummary[] = [];
  for (const scenario of scenarios) {
    const targets: Partial<Record<TargetName, TargetSummary>> = {};
    const reps = new Map<TargetName, Map<number, Cell>>();
    for (const target of targetNames) {
      const own = byRep(cells, scenario.id, target);
      if (own.size === 0) continue;
      reps.set(target, own);
      const values = [...own.values()];
      const summary: TargetSummary = { reps: values.length, metrics: {}, errors: 0, errorKinds: {} };
      for (const [name, metric] of Object.entries(metrics)) {
        const series = values.map(metric).filter((value): value is number => value !== undefined);
        if (series.length > 0) summary.metrics[name] = spread(series);
      }
      for (const cell of values) {
        summary.errors += cell.failures.total + (cell.unfinished ?? 0);
        for (const [kind, count] of Object.entries(cell.failures.kinds)) summary.errorKinds[kind] = (summary.errorKinds[kind] ?? 0) + count;
        if (cell.unfinished) summary.errorKinds.unfinished = (summary.errorKinds.unfinished ?? 0) + cell.unfinished;
      }
      targets[target] = summary;
    }
    const compare: Record<string, Spread> = {};
    const direct = reps.get('direct');
    const minus = (a: number, b: number) => a - b;
    const ratio = (a: number, b: number) => a / b;
    for (const target of ['limit', 'switchyard', 'baseline'] as const) {
      const own = reps.get(target);
      if (!own) continue;
      if (direct && scenario.kind === 'paced') {
        const p50 = scenario.stream ? metrics.ttfbP50 : metrics.p50;
        const p99 = scenario.stream ? metrics.ttfbP99 : metrics.p99;
        compare[`${target}AddedP50Ms`] = paired(own, direct, p50 as Metric, minus);
        compare[`${target}AddedP99Ms`] = paired(own, direct, p99 as Metric, minus);
        if (scenario.stream) compare[`${target}AddedTotalP50Ms`] = paired(own, direct, metrics.p50 as Metric, minus);
      }
      if (direct && scenario.kind === 'closed') compare[`${target}ThroughputVsDirect`] = paired(own, direct, metrics.throughput as Metric, ratio);
    }
    const limit = reps.get('limit');
    const switchyard = reps.get('switchyard');
    const baseline = reps.get('baseline');
    if (limit && baseline) compare.baselineCpuVsLimit = paired(baseline, limit, metrics.proxyCpuUsPerReq as Metric, ratio);
    if (baseline && switchyard) {
      compare.switchyardCpuVsBaseline = paired(switchyard, baseline, metrics.proxyCpuUsPerReq as Metric, ratio);
      if (scenario.kind === 'closed') compare.switchyardThroughputVsBaseline = paired(switchyard, baseline, metrics.throughput as Metric, ratio);
    }
    if (limit && switchyard) {
      compare.switchyardCpuVsLimit = paired(switchyard, limit, metrics.proxyCpuUsPerReq as Metric, ratio);
      if (scenario.kind === 'closed') compare.switchyardThroughputVsLimit = paired(switchyard, limit, metrics.throughput as Metric, ratio);
      else {
        const p50 = scenario.stream ? metrics.ttfbP50 : metrics.p50;
        compare.switchyardMinusLimitP50Ms = paired(switchyard, limit, p50 as Metric, minus);
      }
    }
    summaries.push({ scenario: scenario.id, kind: scenario.kind, stream: scenario.stream, targets, compare });
  }
  return summaries;
}

// ---------------------------------------------------------------- Markdown

function digits(value: number): number {
  const magnitude = Math.abs(value);
  if (magnitude >= 100) return 0;
  if (magnitude >= 10) return 1;
  return 2;
}

function num(value: number, fixed?: number): string {
  if (!Number.isFinite(value)) return '–';
  return value.toFixed(fixed ?? digits(value));
}

/** "median (min–max)", or just the median with one repetition. */
export function fmt(s: Spread | undefined, options: { fixed?: number; sign?: boolean; suffix?: string } = {}): string {
  if (!s || s.n === 0) return '–';
  const one = (value: number) => {
    const text = num(value, options.fixed ?? digits(s.median));
    return options.sign && value > 0 ? `+${text}` : text;
  };
  const suffix = options.suffix ?? '';
  if (s.n === 1 || s.min === s.max) return `${one(s.median)}${suffix}`;
  return `${one(s.median)}${suffix} (${one(s.min)}…${one(s.max)})`;
}

function kReq(s: Spread | undefined): string {
  if (!s || s.n === 0) return '–';
  const k = (value: number) => (value / 1000).toFixed(2);
  return s.n === 1 || s.min === s.max ? `${k(s.median)}k` : `${k(s.median)}k (${k(s.min)}…${k(s.max)})`;
}

function errorsText(summary: TargetSummary | undefined): string {
  if (!summary) return '–';
  return summary.errors === 0 ? '0' : `**${summary.errors}**`;
}

export interface MemoryFigures {
  idleMiB: number;
  peakMiB: number;
  afterMiB: number;
  /** V8 heap when it could be read (limit proxy /memory, gateway /metrics). */
  heapIdle: { heapUsedMiB: number; heapTotalMiB: number } | undefined;
  heapAfter: { heapUsedMiB: number; heapTotalMiB: number } | undefined;
}

export interface ReportContext {
  title: string;
  header: string[];
  scenarios: readonly ScenarioSpec[];
  summaries: ScenarioSummary[];
  rss: Partial<Record<TargetName, MemoryFigures>>;
  checks: Check[];
  notes: string[];
}

export interface Check {
  name: string;
  measured: string;
  goal: string;
  pass: boolean | undefined;
}

export function buildChecks(summaries: ScenarioSummary[]): Check[] {
  const find = (id: string) => summaries.find((summary) => summary.scenario === id);
  const checks: Check[] = [];
  const p500 = find('paced-500')?.compare.switchyardAddedP50Ms;
  if (p500 && p500.n > 0)
    checks.push({ name: 'added p50, non-stream, paced 500 req/s', measured: `${fmt(p500, { sign: true, fixed: 2 })} ms`, goal: '≤ 1 ms', pass: p500.median <= 1 });
  const p1000 = find('paced-1000')?.compare.switchyardAddedP50Ms;
  if (p1000 && p1000.n > 0)
    checks.push({
      name: 'added p50, non-stream, paced 1,000 req/s',
      measured: `${fmt(p1000, { sign: true, fixed: 2 })} ms`,
      goal: '< 1 ms (aim: well under)',
      pass: p1000.median < 1,
    });
  for (const id of ['saturation-32', 'saturation-256']) {
    const ratio = find(id)?.compare.switchyardThroughputVsDirect;
    if (ratio && ratio.n > 0) checks.push({ name: `throughput vs direct, ${id}`, measured: fmt(ratio, { fixed: 2 }), goal: '≥ 0.70', pass: ratio.median >= 0.7 });
  }
  for (const id of ['saturation-32', 'saturation-32-stream']) {
    const ratio = find(id)?.compare.switchyardCpuVsLimit;
    if (ratio && ratio.n > 0)
      checks.push({ name: `proxy CPU per request vs limit proxy, ${id}`, measured: fmt(ratio, { fixed: 2, suffix: '×' }), goal: '≤ 1.3× (aim)', pass: ratio.median <= 1.3 });
  }
  return checks;
}

export function markdown(context: ReportContext): string {
  const lines: string[] = [`## ${context.title}`, '', ...context.header, ''];
  const specs = new Map(context.scenarios.map((scenario) => [scenario.id, scenario]));
  const isCache = (summary: ScenarioSummary) => specs.get(summary.scenario)?.cache !== undefined;
  const paced = context.summaries.filter((summary) => summary.kind === 'paced' && !summary.stream && !isCache(summary));
  const pacedStream = context.summaries.filter((summary) => summary.kind === 'paced' && summary.stream && !isCache(summary));
  const closed = context.summaries.filter((summary) => summary.kind === 'closed' && !isCache(summary));
  const cached = context.summaries.filter(isCache);
  const added = (summary: ScenarioSummary, target: TargetName, key: string) => (target === 'direct' ? '–' : fmt(summary.compare[`${target}${key}`], { sign: true, fixed: 2 }));

  if (paced.length > 0) {
    lines.push('### Open loop, evenly paced, non-streaming', '');
    lines.push('| scenario | target | p50 ms | p90 ms | p99 ms | added p50 ms | added p99 ms | proxy CPU µs/req | errors |');
    lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const summary of paced) {
      for (const target of targetNames) {
        const own = summary.targets[target];
        if (!own) continue;
        const m = own.metrics;
        lines.push(
          `| ${summary.scenario} | ${target} | ${fmt(m.p50, { fixed: 2 })} | ${fmt(m.p90, { fixed: 2 })} | ${fmt(m.p99, { fixed: 2 })} | ${added(summary, target, 'AddedP50Ms')} | ${added(summary, target, 'AddedP99Ms')} | ${target === 'direct' ? '–' : fmt(m.proxyCpuUsPerReq, { fixed: 0 })} | ${errorsText(own)} |`,
        );
      }
    }
    lines.push('');
  }
  if (pacedStream.length > 0) {
    lines.push('### Open loop, evenly paced, streaming', '');
    lines.push('| scenario | target | TTFB p50 ms | TTFB p99 ms | total p50 ms | added TTFB p50 ms | added TTFB p99 ms | added total p50 ms | proxy CPU µs/stream | errors |');
    lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const summary of pacedStream) {
      for (const target of targetNames) {
        const own = summary.targets[target];
        if (!own) continue;
        const m = own.metrics;
        lines.push(
          `| ${summary.scenario} | ${target} | ${fmt(m.ttfbP50, { fixed: 2 })} | ${fmt(m.ttfbP99, { fixed: 2 })} | ${fmt(m.p50, { fixed: 2 })} | ${added(summary, target, 'AddedP50Ms')} | ${added(summary, target, 'AddedP99Ms')} | ${added(summary, target, 'AddedTotalP50Ms')} | ${target === 'direct' ? '–' : fmt(m.proxyCpuUsPerReq, { fixed: 0 })} | ${errorsText(own)} |`,
        );
      }
    }
    lines.push('');
  }
  if (closed.length > 0) {
    lines.push('### Closed loop (saturation)', '');
    lines.push('| scenario | target | req/s | vs direct | proxy CPU µs/req | proxy CPU vs limit | p50 ms | p99 ms | CPU 0 busy | CPU 1 others | errors |');
    lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const summary of closed) {
      for (const target of targetNames) {
        const own = summary.targets[target];
        if (!own) continue;
        const m = own.metrics;
        const vsDirect = target === 'direct' ? '1' : fmt(summary.compare[`${target}ThroughputVsDirect`], { fixed: 2 });
        const cpuVsLimit = target === 'switchyard' || target === 'baseline' ? fmt(summary.compare[`${target}CpuVsLimit`], { fixed: 2, suffix: '×' }) : '–';
        lines.push(
          `| ${summary.scenario} | ${target} | ${kReq(m.throughput)} | ${vsDirect} | ${target === 'direct' ? '–' : fmt(m.proxyCpuUsPerReq, { fixed: 0 })} | ${cpuVsLimit} | ${fmt(m.p50, { fixed: 2 })} | ${fmt(m.p99, { fixed: 2 })} | ${fmt(m.cpu0Share, { fixed: 2 })} | ${fmt(m.cpu1OtherShare, { fixed: 2 })} | ${errorsText(own)} |`,
        );
      }
    }
    lines.push('');
  }
  const versus = context.summaries.filter((summary) => summary.compare.switchyardCpuVsBaseline?.n);
  if (versus.length > 0) {
    lines.push('### This checkout against the baseline checkout', '');
    lines.push('Paired by repetition (the two gateways ran alternately in every repetition, same load and machine).', '');
    lines.push('| scenario | proxy CPU µs/req, switchyard / baseline | req/s, switchyard / baseline |', '| --- | --- | --- |');
    for (const summary of versus) {
      lines.push(
        `| ${summary.scenario} | ${fmt(summary.compare.switchyardCpuVsBaseline, { fixed: 3, suffix: '×' })} | ${fmt(summary.compare.switchyardThroughputVsBaseline, { fixed: 3, suffix: '×' })} |`,
      );
    }
    lines.push('');
  }
  if (cached.length > 0) {
    lines.push('### Response cache', '');
    lines.push("Direct and limit always go upstream; compare Switchyard's hit path with them, and its miss path (lookup + store) with the plain scenarios above.", '');
    lines.push('| scenario | target | p50 ms | p99 ms | added p50 ms | req/s | vs direct | proxy CPU µs/req | upstream calls/req | errors |');
    lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const summary of cached) {
      for (const target of targetNames) {
        const own = summary.targets[target];
        if (!own) continue;
        const m = own.metrics;
        const closedLoop = summary.kind === 'closed';
        const vsDirect = !closedLoop ? '–' : target === 'direct' ? '1' : fmt(summary.compare[`${target}ThroughputVsDirect`], { fixed: 2 });
        lines.push(
          `| ${summary.scenario} | ${target} | ${fmt(m.p50, { fixed: 2 })} | ${fmt(m.p99, { fixed: 2 })} | ${closedLoop ? '–' : added(summary, target, 'AddedP50Ms')} | ${closedLoop ? kReq(m.throughput) : '–'} | ${vsDirect} | ${target === 'direct' ? '–' : fmt(m.proxyCpuUsPerReq, { fixed: 0 })} | ${fmt(m.upstreamPerReq, { fixed: 2 })} | ${errorsText(own)} |`,
        );
      }
    }
    lines.push('');
  }
  const rssRows = (['limit', 'switchyard', 'baseline'] as const).filter((target) => context.rss[target]);
  if (rssRows.length > 0) {
    lines.push('### Memory (VmRSS, MiB)', '');
    const heap = (figures: MemoryFigures['heapIdle']) => (figures ? `${num(figures.heapUsedMiB, 0)} / ${num(figures.heapTotalMiB, 0)}` : '–');
    lines.push('| target | idle (before load) | peak under load | idle (after load) | V8 heap used / total, before → after |', '| --- | --- | --- | --- | --- |');
    for (const target of rssRows) {
      const rss = context.rss[target];
      if (rss) lines.push(`| ${target} | ${num(rss.idleMiB, 0)} | ${num(rss.peakMiB, 0)} | ${num(rss.afterMiB, 0)} | ${heap(rss.heapIdle)} → ${heap(rss.heapAfter)} |`);
    }
    const perScenario = context.summaries.filter((summary) => summary.targets.switchyard?.metrics.proxyRssPeakMiB);
    if (perScenario.length > 0) {
      lines.push('', '| scenario | limit peak | switchyard peak |', '| --- | --- | --- |');
      for (const summary of perScenario) {
        lines.push(
          `| ${summary.scenario} | ${fmt(summary.targets.limit?.metrics.proxyRssPeakMiB, { fixed: 0 })} | ${fmt(summary.targets.switchyard?.metrics.proxyRssPeakMiB, { fixed: 0 })} |`,
        );
      }
    }
    lines.push('');
  }
  if (context.checks.length > 0) {
    lines.push('### Targets', '', '| figure | switchyard | goal | met |', '| --- | --- | --- | --- |');
    for (const check of context.checks) lines.push(`| ${check.name} | ${check.measured} | ${check.goal} | ${check.pass === undefined ? '–' : check.pass ? 'yes' : '**no**'} |`);
    lines.push('');
  }
  const errorLines: string[] = [];
  for (const summary of context.summaries) {
    for (const target of targetNames) {
      const own = summary.targets[target];
      if (own && own.errors > 0)
        errorLines.push(
          `- ${summary.scenario} / ${target}: ${Object.entries(own.errorKinds)
            .map(([kind, count]) => `${kind} ×${count}`)
            .join(', ')}`,
        );
    }
  }
  if (errorLines.length > 0) lines.push('### Errors', '', ...errorLines, '');
  const descriptions = context.scenarios.filter((scenario) => context.summaries.some((summary) => summary.scenario === scenario.id));
  if (descriptions.length > 0) {
    lines.push(`Scenarios: ${descriptions.map((scenario) => `\`${scenario.id}\` ${specs.get(scenario.id)?.description ?? ''}`).join('; ')}.`, '');
  }
  if (context.notes.length > 0) lines.push(...context.notes.map((note) => `> ${note}`), '');
  return lines.join('\n');
}
