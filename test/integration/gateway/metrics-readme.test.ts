/**
 * README's metric table and what /metrics serves agree, both ways: every
 * switchyard_* family served is documented, and every documented one is served.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { backendFor, startSim, startTestGateway, type TestGateway } from '../../helpers/gateway.ts';
import { startRedis, type TestRedis } from '../../helpers/redis.ts';

let sim: Simulator;
let redis: TestRedis;
let gateway: TestGateway;

beforeAll(async () => {
  sim = await startSim({ flavor: 'vllm' });
  redis = await startRedis();
  gateway = await startTestGateway({
    backends: [backendFor('v', sim, { cost: { inputPer1M: 1, outputPer1M: 2 } })],
    models: [{ name: 'm', targets: [{ backend: 'v', model: 'Qwen/Qwen3-8B' }] }],
    redis: { url: redis.url },
    metrics: { tenantLabels: true },
  });
});

afterAll(async () => {
  await gateway?.close();
  await redis?.stop();
  await sim?.close();
});

function documented(): string[] {
  const readme = readFileSync('README.md', 'utf8');
  const section = readme.slice(readme.indexOf('\n## Metrics\n'), readme.indexOf('\n## ', readme.indexOf('\n## Metrics\n') + 5));
  return [...section.matchAll(/^\| `(switchyard_[a-z0-9_*]+)`/gm)].map((match) => match[1] as string);
}

describe('README metric table', () => {
  it('matches the families /metrics serves', async () => {
    const client = gateway.client();
    await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, temperature: 0 });
    const text = await (await fetch(`${gateway.url}/metrics`)).text();
    expect(text).toMatch(/switchyard_tenant_tokens_total\{tenant="default",model="m",type="completion"\} 2/);
    expect(text).toMatch(/switchyard_tenant_cost_total\{tenant="default",model="m"\} [0-9.e-]+/);
    const served = [...text.matchAll(/^# TYPE (switchyard_[a-z0-9_]+) /gm)].map((match) => match[1] as string);
    const names = documented();
    const patterns = names.filter((name) => name.endsWith('*')).map((name) => name.slice(0, -1));
    const exact = new Set(names.filter((name) => !name.endsWith('*')));
    const undocumented = served.filter((name) => !exact.has(name) && !patterns.some((prefix) => name.startsWith(prefix)));
    expect(undocumented).toEqual([]);
    const missing = [...exact].filter((name) => !served.includes(name));
    expect(missing).toEqual([]);
  });
});
