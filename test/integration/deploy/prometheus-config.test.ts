/**
 * The Prometheus files with Debian's promtool: config and rules syntax, the alert
 * unit tests (deploy/prometheus/alerts.test.yml), and the rule conventions the
 * README relies on. Also checks the helper that strips alert thresholds, which
 * the live test depends on.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { conditionOperands, dashboardExpressions, requireTool, ruleExpressions, run, substituteGrafanaVariables } from '../../helpers/prometheus.ts';

const root = resolve(import.meta.dirname, '../../..');
const promDir = join(root, 'deploy/prometheus');

interface Rules {
  groups: Array<{ name: string; rules: Array<{ alert?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }> }>;
}

describe('promtool', () => {
  it('accepts deploy/prometheus/prometheus.yml (and the rule files it names)', () => {
    const result = run(requireTool('promtool'), ['check', 'config', join(promDir, 'prometheus.yml')]);
    expect(result.status, result.output).toBe(0);
    expect(result.output).toMatch(/SUCCESS/);
  });

  it('accepts deploy/prometheus/alerts.yml', () => {
    const result = run(requireTool('promtool'), ['check', 'rules', join(promDir, 'alerts.yml')]);
    expect(result.status, result.output).toBe(0);
  });

  it('passes the alert unit tests in deploy/prometheus/alerts.test.yml', () => {
    const result = run(requireTool('promtool'), ['test', 'rules', 'alerts.test.yml'], { cwd: promDir });
    expect(result.status, result.output).toBe(0);
    expect(result.output).toContain('SUCCESS');
  });
});

describe('alert rules', () => {
  const rules = parseYaml(readFileSync(join(promDir, 'alerts.yml'), 'utf8')) as Rules;
  const alerts = rules.groups.flatMap((group) => group.rules);

  it('cover backend down, error ratio, latency SLO burn and saturation, each with severity and a summary', () => {
    const names = alerts.map((rule) => rule.alert);
    for (const name of ['SwitchyardBackendDown', 'SwitchyardHighErrorRatio', 'SwitchyardTTFTBudgetFastBurn', 'SwitchyardTTFTBudgetSlowBurn', 'SwitchyardAllBackendsSaturated']) {
      expect(names).toContain(name);
    }
    for (const rule of alerts) {
      expect(['critical', 'warning'], rule.alert).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
      expect(rule.annotations?.description, rule.alert).toBeTruthy();
    }
  });

  it('are each explained in deploy/README.md', () => {
    const readme = readFileSync(join(root, 'deploy/README.md'), 'utf8');
    const missing = alerts.map((rule) => rule.alert).filter((name) => !readme.includes(`\`${name}\``));
    expect(missing, 'alerts deploy/README.md does not name').toEqual([]);
  });

  it('each strip to expressions without a top-level comparison', () => {
    for (const { source, expr, condition } of ruleExpressions(rules)) {
      expect(expr.trim(), source).not.toBe('');
      expect(expr, source).not.toBe(condition.trim());
      // Stripping again changes nothing: no comparison or set operator is left at the top level.
      expect(conditionOperands(expr), source).toEqual([expr]);
    }
  });
});

describe('conditionOperands (alert threshold stripping)', () => {
  it('drops a top-level comparison with a numeric threshold', () => {
    expect(conditionOperands('up{job="switchyard"} == 0')).toEqual(['up{job="switchyard"}']);
    expect(conditionOperands('max by (backend) (switchyard_backend_up) == 0')).toEqual(['max by (backend) (switchyard_backend_up)']);
    expect(conditionOperands('sum(rate(a[5m])) / sum(rate(b[5m])) > 0.05')).toEqual(['sum(rate(a[5m])) / sum(rate(b[5m]))']);
    expect(conditionOperands('0.5 < bool foo')).toEqual(['foo']);
    expect(conditionOperands('(1 - x / y) > (14.4 * 0.01)')).toEqual(['1 - x / y']);
  });

  it('splits and / unless / or at the top level only', () => {
    expect(conditionOperands('(a > 1) and on (model) (b > 2)')).toEqual(['a', 'b']);
    expect(conditionOperands('a > 1 unless b')).toEqual(['a', 'b']);
    expect(conditionOperands('min(max by (x) (a) or max by (x) (b)) > 0')).toEqual(['min(max by (x) (a) or max by (x) (b))']);
    expect(conditionOperands('random_and_more > 1')).toEqual(['random_and_more']);
  });

  it('ignores operators inside selectors and strings, and keeps both sides of a comparison of two series', () => {
    expect(conditionOperands('foo{le=~"5(\\\\.0)?", a!="b>c"} > 3')).toEqual(['foo{le=~"5(\\\\.0)?", a!="b>c"}']);
    expect(conditionOperands('a > b')).toEqual(['a', 'b']);
    expect(conditionOperands('rate(x[5m])')).toEqual(['rate(x[5m])']);
  });
});

describe('Grafana variable substitution', () => {
  it('gives intervals fixed durations and template variables their "All" regex', () => {
    expect(substituteGrafanaVariables('rate(x{model=~"$model",backend=~"${backend}"}[$__rate_interval])')).toBe('rate(x{model=~".*",backend=~".*"}[30s])');
    expect(substituteGrafanaVariables('sum_over_time(x[$__range]) + y[[z]]')).toBe('sum_over_time(x[5m]) + y.*');
  });

  it('reads panel targets inside rows and label_values variables', () => {
    const found = dashboardExpressions({
      panels: [{ type: 'row', title: 'r', panels: [{ title: 'p', targets: [{ refId: 'A', expr: 'up' }] }] }],
      templating: { list: [{ name: 'model', type: 'query', query: { query: 'label_values(switchyard_requests_total, model)' } }] },
    });
    expect(found).toEqual([
      { source: 'panel "p" target A', expr: 'up' },
      { source: 'variable $model', expr: 'count by (model) (switchyard_requests_total)' },
    ]);
  });
});
