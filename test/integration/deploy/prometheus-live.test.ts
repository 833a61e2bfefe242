/**
 * A real Prometheus (Debian's `prometheus` binary) scrapes two real gateway
 * replicas (on their admin/metrics port, as in the compose stack) and their
 * simulated backends, with the scrape jobs and relabelling of
 * deploy/prometheus/prometheus.yml (targets swapped for the test's ports, 1 s
 * intervals) and the rules of deploy/prometheus/alerts.yml, while clients send
 * mixed traffic. Replica A (API keys, in-memory cache and limits): plain and
 * streaming chat, repeated deterministic requests (cache hits), embeddings, an
 * unknown model (404), a model whose only backend fails (5xx), a failover, a
 * stream that dies mid-way, a client that leaves mid-stream, a wrong API key
 * (401) and a key over its requests-per-minute limit (429). Replica B has a Redis
 * that is down, so its cache and limits count Redis errors.
 *
 * Then every PromQL expression of deploy/grafana/dashboards/switchyard.json
 * (Grafana variables substituted: $__rate_interval -> 30s, $model / $backend ->
 * .*) and every alert expression of alerts.yml must return data: a non-empty
 * result with at least one number that is not NaN; and every metric they name
 * must exist (so an `or vector(0)` fallback cannot hide a misspelt metric). Alert conditions are empty
 * when all is well, so each alert is checked through the expressions under its
 * condition: the top-level `and` / `unless` / `or` operands, with their final
 * comparison against a numeric threshold removed (`conditionOperands` in
 * test/helpers/prometheus.ts; `max(x) == 0` is checked as `max(x)`).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { backendFor, startSim, startTestGateway, type TestGateway } from '../../helpers/gateway.ts';
import {
  dashboardExpressions,
  freePort,
  metricNames,
  ruleExpressions,
  startPrometheus,
  substituteGrafanaVariables,
  type RunningPrometheus,
  type SourcedExpr,
} from '../../helpers/prometheus.ts';

const root = resolve(import.meta.dirname, '../../..');
const messages = [{ role: 'user' as const, content: 'Say something about switchyards.' }];

interface ScrapeConfig {
  job_name: string;
  static_configs?: Array<{ targets: string[]; labels?: Record<string, string> }>;
  dns_sd_configs?: unknown;
  [key: string]: unknown;
}

const hostPort = (url: string) => new URL(url).host;

const mainKey = 'sk-swy-deploy-test-main-key';
const limitedKey = 'sk-swy-deploy-test-limited-key';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('Prometheus scraping gateway replicas under traffic', () => {
  const simulators: Simulator[] = [];
  const gateways: TestGateway[] = [];
  let prometheus: RunningPrometheus;
  let traffic: { stop(): Promise<void>; counts: Record<string, number> };

  beforeAll(async () => {
    const sim = async (options: Parameters<typeof startSim>[0]) => {
      const simulator = await startSim(options);
      simulators.push(simulator);
      return simulator;
    };
    const vllm = await sim({ flavor: 'vllm', ttftMs: 5, tokensPerSecond: 500 });
    const llamacpp = await sim({ flavor: 'llamacpp', ttftMs: 5, tokensPerSecond: 500, maxConcurrency: 2 });
    const flaky = await sim({ flavor: 'vllm', failRate: 1, failMode: '500' });
    const dying = await sim({ flavor: 'vllm', failRate: 1, failMode: 'die-mid-stream', tokensPerSecond: 500 });
    // Backend ids as in deploy/compose/switchyard.yaml, so the `backend` label the
    // Prometheus jobs put on the runtimes' metrics matches the gateway's.
    const backends = [
      backendFor('vllm', vllm, { health: { intervalMs: 500 }, cost: { inputPer1M: 0.1, outputPer1M: 0.4 } }),
      backendFor('llamacpp', llamacpp, { health: { intervalMs: 500 }, cost: { perHour: 0.05 } }),
      backendFor('flaky', flaky, { health: { intervalMs: 500 }, cost: { inputPer1M: 1, outputPer1M: 1 } }),
      backendFor('dying', dying, { health: { intervalMs: 500 }, cost: { inputPer1M: 1, outputPer1M: 1 } }),
    ];
    const chat = {
      name: 'chat',
      targets: [
        { backend: 'vllm', model: 'Qwen/Qwen3-8B' },
        { backend: 'llamacpp', model: 'qwen3-8b-q4' },
      ],
    };
    const common = {
      logging: { level: 'warn' },
      // Connections the clients opened but never used keep a graceful close waiting
      // for the whole grace period; the test does not need to wait.
      server: { shutdownGraceMs: 1_000 },
      // /metrics on its own listener, as deploy/compose/switchyard.yaml has it.
      admin: { port: 0 },
      backends,
    };
    gateways.push(
      await startTestGateway({
        ...common,
        models: [
          chat,
          {
            name: 'chat-failover',
            policy: 'weighted',
            targets: [
              { backend: 'flaky', model: 'Qwen/Qwen3-8B', weight: 1 },
              { backend: 'vllm', model: 'Qwen/Qwen3-8B', weight: 0 },
            ],
          },
          { name: 'broken', retries: 0, targets: [{ backend: 'flaky', model: 'Qwen/Qwen3-8B' }] },
          { name: 'dying', retries: 0, targets: [{ backend: 'dying', model: 'Qwen/Qwen3-8B' }] },
          { name: 'embed', targets: [{ backend: 'vllm', model: 'Qwen/Qwen3-8B' }] },
        ],
        auth: {
          mode: 'keys',
          keys: [
            { id: 'main', hash: sha256(mainKey) },
            { id: 'limited', hash: sha256(limitedKey), rpm: 2 },
          ],
        },
      }),
    );
    gateways.push(
      await startTestGateway({
        ...common,
        models: [chat],
        redis: { url: `redis://127.0.0.1:${await freePort()}/0`, startupWaitMs: 0, connectTimeoutMs: 100, commandTimeoutMs: 100 },
        limits: { defaults: { rpm: 1_000_000 } },
      }),
    );

    // deploy/prometheus/prometheus.yml with the test's targets and 1 s intervals.
    const config = parseYaml(readFileSync(join(root, 'deploy/prometheus/prometheus.yml'), 'utf8')) as {
      global: Record<string, unknown>;
      rule_files: string[];
      scrape_configs: ScrapeConfig[];
      alerting?: unknown;
    };
    const port = await freePort();
    const targets: Record<string, string[]> = {
      prometheus: [`127.0.0.1:${port}`],
      switchyard: gateways.map((gateway) => hostPort(gateway.adminUrl ?? 'http://admin.port.not.set')),
      vllm: [hostPort(vllm.url)],
      llamacpp: [hostPort(llamacpp.url)],
    };
    config.global = { ...config.global, scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' };
    config.rule_files = config.rule_files.map((file) => join(root, 'deploy/prometheus', file));
    delete config.alerting;
    for (const job of config.scrape_configs) {
      const jobTargets = targets[job.job_name];
      if (!jobTargets) throw new Error(`prometheus.yml has a job "${job.job_name}" this test does not know: give it targets in prometheus-live.test.ts`);
      delete job.dns_sd_configs;
      job.static_configs = [{ targets: jobTargets }];
    }
    prometheus = await startPrometheus(stringifyYaml(config), { port });

    const [replicaA, replicaB] = gateways as [TestGateway, TestGateway];
    traffic = startTraffic(replicaA, replicaB);
  }, 60_000);

  afterAll(async () => {
    await traffic?.stop();
    await prometheus?.close();
    await Promise.all(gateways.map((gateway) => gateway.close()));
    await Promise.all(simulators.map((simulator) => simulator.close()));
  });

  it('evaluates every dashboard and alert expression to data', async () => {
    const dashboard = JSON.parse(readFileSync(join(root, 'deploy/grafana/dashboards/switchyard.json'), 'utf8')) as Parameters<typeof dashboardExpressions>[0];
    const rules = parseYaml(readFileSync(join(root, 'deploy/prometheus/alerts.yml'), 'utf8')) as Parameters<typeof ruleExpressions>[0];
    const expressions: SourcedExpr[] = [
      ...dashboardExpressions(dashboard).map(({ source, expr }) => ({ source: `dashboard ${source}`, expr: substituteGrafanaVariables(expr) })),
      ...ruleExpressions(rules).map(({ source, expr }) => ({ source: `alerts.yml ${source}`, expr })),
    ];
    expect(expressions.length).toBeGreaterThan(40);

    // Scrapes every second and the traffic keeps going: poll until every
    // expression has data, or report the ones that never did.
    let failing: Array<SourcedExpr & { why: string }> = [];
    const deadline = Date.now() + 25_000;
    let pending = expressions;
    do {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      failing = [];
      for (const item of pending) {
        const result = await prometheus.query(item.expr);
        if (result.status !== 'success') failing.push({ ...item, why: `error: ${result.error}` });
        else if (result.values.length === 0) failing.push({ ...item, why: 'empty result' });
        else if (result.values.every((value) => value === 'NaN')) failing.push({ ...item, why: `only NaN (${result.values.length} series)` });
      }
      // A query error is not going to fix itself.
      if (failing.some((item) => item.why.startsWith('error'))) break;
      pending = failing;
    } while (failing.length > 0 && Date.now() < deadline);

    const report = failing.map((item) => `- ${item.source}: ${item.why}\n    ${item.expr}`).join('\n');
    expect(failing.length, `expressions without data after ${JSON.stringify(traffic.counts)} requests:\n${report}\nprometheus log:\n${prometheus.logs().slice(-2000)}`).toBe(0);
  }, 45_000);

  it('finds every metric the dashboard and the alerts name', async () => {
    const dashboard = JSON.parse(readFileSync(join(root, 'deploy/grafana/dashboards/switchyard.json'), 'utf8')) as Parameters<typeof dashboardExpressions>[0];
    const rules = parseYaml(readFileSync(join(root, 'deploy/prometheus/alerts.yml'), 'utf8')) as Parameters<typeof ruleExpressions>[0];
    const names = new Set([
      ...dashboardExpressions(dashboard).flatMap(({ expr }) => metricNames(substituteGrafanaVariables(expr))),
      ...ruleExpressions(rules).flatMap(({ condition }) => metricNames(condition)),
    ]);
    expect(names.size).toBeGreaterThan(25);
    const missing: string[] = [];
    for (const name of names) {
      const result = await prometheus.query(`count({__name__=${JSON.stringify(name)}})`);
      if (result.values.length === 0) missing.push(name);
    }
    expect(missing, 'metrics named in the dashboard or alerts that Prometheus has no series of').toEqual([]);
  });

  it('scrapes both gateway replicas on their metrics port and both runtimes, labelling the runtimes with the gateway backend id', async () => {
    const up = await prometheus.query('up{job=~"switchyard|vllm|llamacpp"}');
    expect(up.series.map((series) => `${series.job}:${series.backend ?? ''}`).sort()).toEqual(['llamacpp:llamacpp', 'switchyard:', 'switchyard:', 'vllm:vllm']);
    expect(up.values).toEqual(['1', '1', '1', '1']);
    const joined = await prometheus.query('max by (backend) (vllm:num_requests_running) and on (backend) max by (backend) (switchyard_backend_up)');
    expect(joined.series).toEqual([{ backend: 'vllm' }]);
  });

  it('loads and evaluates every rule of alerts.yml without errors', async () => {
    const body = await prometheus.get<{ data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> } }>('/api/v1/rules');
    const loaded = body.data.groups.flatMap((group) => group.rules);
    const rules = parseYaml(readFileSync(join(root, 'deploy/prometheus/alerts.yml'), 'utf8')) as { groups: Array<{ rules: unknown[] }> };
    expect(loaded.length).toBe(rules.groups.flatMap((group) => group.rules).length);
    for (const rule of loaded) {
      expect(rule.health, `${rule.name}: ${rule.lastError ?? ''}`).toBe('ok');
    }
  });
});

/** Clients sending a mix of requests until stopped, with a few ms between rounds. */
function startTraffic(replicaA: TestGateway, replicaB: TestGateway): { stop(): Promise<void>; counts: Record<string, number> } {
  const counts: Record<string, number> = {};
  const count = (what: string) => (counts[what] = (counts[what] ?? 0) + 1);
  const client = replicaA.client({ apiKey: mainKey });
  let running = true;
  const post = (gateway: TestGateway, body: unknown, options: { key?: string; signal?: AbortSignal } = {}) =>
    fetch(`${gateway.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(options.key ? { authorization: `Bearer ${options.key}` } : {}) },
      body: JSON.stringify(body),
      signal: options.signal,
    });
  const status = async (what: string, response: Promise<Response>) => {
    const answer = await response;
    await answer.text().catch(() => undefined);
    count(`${what} ${answer.status}`);
  };

  const steps: Array<() => Promise<void>> = [
    async () => {
      await client.chat.completions.create({ model: 'chat', messages, max_tokens: 8 });
      count('chat');
    },
    async () => {
      const stream = await client.chat.completions.create({ model: 'chat', messages, max_tokens: 12, stream: true });
      for await (const _chunk of stream) {
        // drain
      }
      count('stream');
    },
    // Deterministic and repeated: a miss, then cache hits.
    () => status('cached', post(replicaA, { model: 'chat', messages, max_tokens: 6, temperature: 0 }, { key: mainKey })),
    async () => {
      await client.chat.completions.create({ model: 'chat-failover', messages, max_tokens: 4 });
      count('failover');
    },
    () => status('broken', post(replicaA, { model: 'broken', messages }, { key: mainKey })),
    () => status('unknown model', post(replicaA, { model: 'no-such-model', messages }, { key: mainKey })),
    async () => {
      await client.embeddings.create({ model: 'embed', input: 'switchyard' });
      count('embed');
    },
    () => status('dying', post(replicaA, { model: 'dying', messages, max_tokens: 40, stream: true }, { key: mainKey })),
    async () => {
      // A client that leaves mid-stream: the gateway cancels the upstream request.
      const controller = new AbortController();
      const response = await post(replicaA, { model: 'chat', messages, max_tokens: 400, stream: true }, { key: mainKey, signal: controller.signal });
      const reader = response.body?.getReader();
      await reader?.read();
      controller.abort();
      await reader?.cancel().catch(() => undefined);
      count('cancelled');
    },
    () => status('wrong key', post(replicaA, { model: 'chat', messages }, { key: 'sk-swy-not-a-key' })),
    () => status('limited key', post(replicaA, { model: 'chat', messages, max_tokens: 2 }, { key: limitedKey })),
    // Replica B: Redis is down, so its cache and request limits meet Redis errors.
    () => status('redis down', post(replicaB, { model: 'chat', messages, max_tokens: 4, temperature: 0 })),
  ];

  const worker = async (offset: number) => {
    let index = offset;
    while (running) {
      const step = steps[index++ % steps.length];
      try {
        await step?.();
      } catch (error) {
        count(`error: ${(error as Error).message.slice(0, 60)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 15));
    }
  };
  const workers = [worker(0), worker(4), worker(8)];
  return {
    counts,
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}
