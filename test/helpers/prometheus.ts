/**
 * Test helpers for the deployment checks: finding the Debian tools, running a
 * real Prometheus on a free port, reading PromQL out of the Grafana dashboard
 * and the alert rules, and turning an alert condition into the expressions
 * underneath it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';
export { freePort };

/**
 * Absolute path of `name` on PATH. `npm test` puts every tool the tests run there first (bin/test-tools.js
 * installs what is missing, or stops with the command to run), so this throws only when vitest is run directly.
 */
export function requireTool(name: string): string {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const path = found.stdout.trim();
  if (found.status === 0 && path !== '') return path;
  throw new Error(`${name} is not on PATH: run the tests with \`npm test\`, which installs the tools they need (bin/test-tools.js) or names the command to run.`);
}

/** Runs a command to completion; returns its exit code and output. */
export function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', cwd: options.cwd, env: options.env, timeout: options.timeoutMs ?? 30_000 });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, output: `${result.stdout}${result.stderr}` };
}

/** One query result from Prometheus' HTTP API. */
export interface QueryResult {
  status: string;
  error?: string;
  resultType?: string;
  /** Sample values as Prometheus prints them ("1", "NaN", "+Inf"). */
  values: string[];
  series: Array<Record<string, string>>;
}

/** A Prometheus server started by a test. */
export interface RunningPrometheus {
  url: string;
  port: number;
  dir: string;
  logs(): string;
  query(expr: string): Promise<QueryResult>;
  get<T>(path: string): Promise<T>;
  close(): Promise<void>;
}

/**
 * Starts `prometheus` with the config text given (already pointing at its targets),
 * a temporary TSDB directory and `options.port` (default: a free port); resolves
 * once /-/ready answers.
 */
export async function startPrometheus(configYaml: string, options: { port?: number; readyTimeoutMs?: number } = {}): Promise<RunningPrometheus> {
  const binary = requireTool('prometheus');
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-prometheus-'));
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, configYaml);
  mkdirSync(join(dir, 'data'));
  const port = options.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  const child: ChildProcess = spawn(
    binary,
    [`--config.file=${configFile}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn', '--storage.tsdb.retention.time=1h'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (options.readyTimeoutMs ?? 15_000);
  for (;;) {
    if (child.exitCode !== null) {
      await close();
      throw new Error(`prometheus exited with code ${child.exitCode} before it was ready:\n${output}`);
    }
    try {
      const response = await fetch(`${url}/-/ready`);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await close();
      throw new Error(`prometheus was not ready within ${options.readyTimeoutMs ?? 15_000} ms:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  return {
    url,
    port,
    dir,
    logs: () => output,
    async get<T>(path: string): Promise<T> {
      const response = await fetch(`${url}${path}`);
      return (await response.json()) as T;
    },
    async query(expr: string): Promise<QueryResult> {
      const response = await fetch(`${url}/api/v1/query`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ query: expr }).toString(),
      });
      const body = (await response.json()) as {
        status: string;
        error?: string;
        data?: { resultType: string; result: unknown };
      };
      if (body.status !== 'success' || !body.data) return { status: body.status, error: body.error ?? `HTTP ${response.status}`, values: [], series: [] };
      const { resultType, result } = body.data;
      if (resultType === 'vector') {
        const samples = result as Array<{ metric: Record<string, string>; value: [number, string] }>;
        return { status: 'success', resultType, values: samples.map((s) => s.value[1]), series: samples.map((s) => s.metric) };
      }
      if (resultType === 'matrix') {
        const streams = result as Array<{ metric: Record<string, string>; values: Array<[number, string]> }>;
        return { status: 'success', resultType, values: streams.flatMap((s) => s.values.map((v) => v[1])), series: streams.map((s) => s.metric) };
      }
      const [, value] = result as [number, string];
      return { status: 'success', resultType, values: [value], series: [{}] };
    },
    close,
  };
}

// ---- PromQL in Grafana dashboards ------------------------------------------------------

/** Where a PromQL expression came from, for failure messages. */
export interface SourcedExpr {
  source: string;
  expr: string;
}

interface GrafanaPanel {
  title?: string;
  type?: string;
  targets?: Array<{ expr?: string; refId?: string; hide?: boolean }>;
  panels?: GrafanaPanel[];
}

interface GrafanaDashboard {
  panels?: GrafanaPanel[];
  templating?: { list?: Array<{ name: string; type: string; query?: string | { query?: string }; definition?: string }> };
}

/** Every PromQL expression of a dashboard: panel targets (rows included) and query-variable definitions. */
export function dashboardExpressions(dashboard: GrafanaDashboard): SourcedExpr[] {
  const found: SourcedExpr[] = [];
  const visit = (panels: GrafanaPanel[] | undefined) => {
    for (const panel of panels ?? []) {
      for (const target of panel.targets ?? []) {
        if (target.expr && target.hide !== true) found.push({ source: `panel "${panel.title ?? '?'}" target ${target.refId ?? '?'}`, expr: target.expr });
      }
      visit(panel.panels);
    }
  };
  visit(dashboard.panels);
  for (const variable of dashboard.templating?.list ?? []) {
    if (variable.type !== 'query') continue;
    const query = typeof variable.query === 'string' ? variable.query : (variable.query?.query ?? variable.definition ?? '');
    found.push({ source: `variable $${variable.name}`, expr: grafanaVariableQueryToPromQL(query) });
  }
  return found;
}

/**
 * Grafana's Prometheus variable functions as plain PromQL returning the same series:
 * label_values(expr, label) -> count by (label) (expr); query_result(expr) -> expr.
 */
export function grafanaVariableQueryToPromQL(query: string): string {
  const labelValues = /^\s*label_values\(\s*(.*)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$/s.exec(query);
  if (labelValues) return `count by (${labelValues[2]}) (${labelValues[1]})`;
  const queryResult = /^\s*query_result\((.*)\)\s*$/s.exec(query);
  if (queryResult?.[1]) return queryResult[1];
  return query;
}

/** Grafana's built-in interval variables, as the test evaluates them. */
export const grafanaIntervals: Readonly<Record<string, string>> = {
  __rate_interval: '30s',
  __interval: '15s',
  __range: '5m',
};

/**
 * Replaces Grafana variables in a dashboard expression: the built-in intervals get
 * fixed durations (`$__rate_interval` -> 30s), every other `$var` / `${var}` /
 * `[[var]]` gets `.*` (the dashboard's "All" value for its regex matchers).
 */
export function substituteGrafanaVariables(expr: string): string {
  return expr
    .replace(/\$\{(__[A-Za-z_]+)(?::[^}]*)?\}|\$(__[A-Za-z_]+)/g, (match, braced: string | undefined, bare: string | undefined) => {
      const name = braced ?? bare ?? '';
      const value = grafanaIntervals[name];
      if (value === undefined) throw new Error(`unknown Grafana built-in variable ${match} in: ${expr}`);
      return value;
    })
    .replace(/\$\{[A-Za-z_][A-Za-z0-9_]*(?::[^}]*)?\}|\$[A-Za-z_][A-Za-z0-9_]*|\[\[[A-Za-z_][A-Za-z0-9_]*\]\]/g, '.*');
}

// ---- alert conditions -------------------------------------------------------------------

const comparisonOperators = ['==', '!=', '>=', '<=', '>', '<'];

/** The top-level parts of `expr` (outside (), [], {}, strings and comments) split at the given operators. */
function splitTopLevel(expr: string, operators: string[], words: boolean): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  let index = 0;
  while (index < expr.length) {
    const char = expr[index] ?? '';
    if (char === '"' || char === "'" || char === '`') {
      index++;
      while (index < expr.length && expr[index] !== char) index += expr[index] === '\\' && char !== '`' ? 2 : 1;
      index++;
      continue;
    }
    if (char === '#') {
      while (index < expr.length && expr[index] !== '\n') index++;
      continue;
    }
    if (char === '(' || char === '[' || char === '{') depth++;
    else if (char === ')' || char === ']' || char === '}') depth--;
    else if (depth === 0) {
      const operator = operators.find((candidate) => {
        if (!expr.startsWith(candidate, index)) return false;
        if (!words) {
          // `=~` / `!~` live inside braces only; `==`, `!=`, `>=`, `<=` before `>` / `<`.
          return true;
        }
        const before = expr[index - 1] ?? ' ';
        const after = expr[index + candidate.length] ?? ' ';
        return !/[A-Za-z0-9_:]/.test(before) && !/[A-Za-z0-9_:]/.test(after);
      });
      if (operator) {
        parts.push(expr.slice(start, index));
        index += operator.length;
        start = index;
        continue;
      }
    }
    index++;
  }
  parts.push(expr.slice(start));
  return parts;
}

/** Removes binary-operator modifiers left at the start of a right-hand side: bool, on(...), ignoring(...), group_left(...). */
function stripModifiers(side: string): string {
  let rest = side.trim();
  for (;;) {
    const match = /^(bool\b|(?:on|ignoring|group_left|group_right)\s*(?:\([^)]*\))?)\s*/.exec(rest);
    if (!match || match[0] === '') return rest;
    rest = rest.slice(match[0].length);
  }
}

/** True when `expr` is wrapped in one pair of parentheses that spans all of it (strings skipped). */
function wrapped(expr: string): boolean {
  if (!expr.startsWith('(') || !expr.endsWith(')')) return false;
  let depth = 0;
  for (let index = 0; index < expr.length; index++) {
    const char = expr[index] ?? '';
    if (char === '"' || char === "'" || char === '`') {
      index++;
      while (index < expr.length && expr[index] !== char) index += expr[index] === '\\' && char !== '`' ? 2 : 1;
      continue;
    }
    if (char === '(') depth++;
    else if (char === ')' && --depth === 0) return index === expr.length - 1;
  }
  return false;
}

/** A side of a comparison that is a threshold: numbers and arithmetic only, no selector or function. */
function isScalarLiteral(expr: string): boolean {
  return /^[\s\d.eE+\-*/%^()]+$/.test(expr) && /\d/.test(expr);
}

/**
 * The expressions under an alert condition, each of which must return data when
 * the system is healthy and has traffic. An alert fires on whatever its `expr`
 * returns, so conditions such as `up == 0` or `ratio > 0.05` are empty when all is
 * well. This splits the expression at its top level (outside any parentheses,
 * brackets, braces and strings): first at `or`, then at `and` / `unless`, then at
 * the comparison operators (==, !=, >, <, >=, <=, with `bool`, `on(...)`,
 * `ignoring(...)`, `group_left/right(...)` modifiers dropped). Sides that are
 * numeric thresholds such as `0.05` or `(14.4 * 0.01)` are discarded; every other
 * side is returned, with one pair of enclosing parentheses removed. An expression
 * without a top-level comparison is returned unchanged.
 */
export function conditionOperands(expr: string): string[] {
  let text = expr.trim();
  while (wrapped(text)) text = text.slice(1, -1).trim();
  for (const operators of [['or'], ['and', 'unless']]) {
    const parts = splitTopLevel(text, operators, true);
    if (parts.length > 1) return parts.flatMap((part) => conditionOperands(stripModifiers(part)));
  }
  const sides = splitTopLevel(text, comparisonOperators, false);
  if (sides.length === 1) return [text];
  return sides
    .map((side) => stripModifiers(side))
    .filter((side) => !isScalarLiteral(side))
    .map((side) => {
      let inner = side.trim();
      while (wrapped(inner)) inner = inner.slice(1, -1).trim();
      return inner;
    });
}

const promqlKeywords = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan', 'Inf', 'NaN', 'atan2']);

/**
 * The metric names a PromQL expression reads: identifiers that are not functions,
 * keywords, label names (inside {...}, by/without/on/ignoring(...)) or durations.
 * Lets a test require every metric a dashboard or rule uses to exist, which
 * `... or vector(0)` fallbacks would otherwise hide.
 */
export function metricNames(expr: string): string[] {
  const text = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of text.matchAll(/(?<![A-Za-z0-9_:.])([A-Za-z_:][A-Za-z0-9_:]*)(?![A-Za-z0-9_:]|\s*\()/g)) {
    const name = match[1] ?? '';
    if (!promqlKeywords.has(name)) names.add(name);
  }
  return [...names];
}

/** Alert and recording rules of a Prometheus rules file (parsed YAML). */
export function ruleExpressions(rules: {
  groups?: Array<{ name: string; rules?: Array<{ alert?: string; record?: string; expr: string }> }>;
}): Array<SourcedExpr & { condition: string }> {
  const found: Array<SourcedExpr & { condition: string }> = [];
  for (const group of rules.groups ?? []) {
    for (const rule of group.rules ?? []) {
      const name = rule.alert ? `alert ${rule.alert}` : `record ${rule.record ?? '?'}`;
      const operands = rule.alert ? conditionOperands(rule.expr) : [rule.expr.trim()];
      for (const [index, operand] of operands.entries()) found.push({ source: operands.length > 1 ? `${name} (operand ${index + 1})` : name, expr: operand, condition: rule.expr });
    }
  }
  return found;
}
