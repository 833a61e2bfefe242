/**
 * Budgets under concurrency (issue 13 item 5), through a real gateway on the
 * in-memory stores and on a real redis-server: 50 concurrent requests on a
 * budget worth a few requests. Each request holds its worst-case cost before it
 * goes out, so the spend never exceeds the budget plus one request's worst case;
 * refusals are 429 insufficient_quota and never reach the backend; afterwards
 * nothing is held and what is spent is exactly the cost of the answers served.
 * Before the fix all 50 passed (checked before, charged after) and spent ~15x.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../../src/limits/api-keys.ts';
import type { BudgetSubject } from '../../../src/limits/budget.ts';
import { estimatePromptTokens } from '../../../src/proxy/estimate.ts';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { startSim, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.ts';
import { startRedis, type TestRedis } from '../../helpers/redis.ts';
import { dumpRedis, postJson, redisSection, simBackend, simModel, type RawAnswer } from './harness.ts';

const budget = 0.0001;
const price = { inputPer1M: 1, outputPer1M: 2 };
const maxTokens = 8;
const costOf = (usage: { prompt_tokens: number; completion_tokens: number }) => (usage.prompt_tokens * price.inputPer1M + usage.completion_tokens * price.outputPer1M) / 1e6;

const solo = generateApiKey();
const teamOne = generateApiKey();
const teamTwo = generateApiKey();
const failing = generateApiKey();

let sim: Simulator;
let redis: TestRedis;
let raw: Redis;

beforeAll(async () => {
  // Slow enough that the 50 requests overlap: each takes ~100 ms + 8 tokens at 400/s.
  [sim, redis] = await Promise.all([startSim({ flavor: 'vllm', ttftMs: 100, tokensPerSecond: 400, maxConcurrency: 256 }), startRedis()]);
  raw = new Redis(redis.url);
});
afterAll(async () => {
  raw?.disconnect();
  await Promise.all([sim?.close(), redis?.stop()]);
});

/** A request body of its own (not cacheable; a cache hit costs nothing). */
function body(label: string): Record<string, unknown> {
  return { model: 'paid', messages: [{ role: 'user', content: `${label} ${randomUUID()}: wagons?` }], temperature: 0.7, max_tokens: maxTokens };
}

/** The worst case the gateway holds for a body: prompt estimate and max_tokens at the route's price. */
const worstCaseOf = (request: Record<string, unknown>) => (estimatePromptTokens(request) * price.inputPer1M + maxTokens * price.outputPer1M) / 1e6;

describe.each(['memory', 'redis'] as const)('budgets under 50 concurrent requests (%s stores)', (store) => {
  let gateway: TestGateway;
  let keyPrefix: string;
  beforeAll(async () => {
    keyPrefix = `race${randomUUID().slice(0, 8)}`;
    gateway = await startTestGateway({
      backends: [simBackend('sim', sim, { cost: price }), { id: 'dead', kind: 'vllm', url: 'http://127.0.0.1:9', cost: price }],
      models: [simModel('paid', 'sim', sim), { name: 'broken', targets: [{ backend: 'dead', model: 'x' }], retries: 0 }],
      auth: {
        mode: 'keys',
        keys: [
          { id: 'solo', hash: solo.hash, tenant: 'solo-team', budget: { amount: budget, period: 'day' } },
          { id: 'team-one', hash: teamOne.hash, tenant: 'team', budget: { amount: budget, period: 'day' } },
          { id: 'team-two', hash: teamTwo.hash, tenant: 'team', budget: { amount: budget, period: 'day' } },
          { id: 'failing', hash: failing.hash, tenant: 'failing-team', budget: { amount: budget, period: 'day' } },
        ],
      },
      limits: { tenants: { team: { budget: { amount: budget, period: 'month' } } } },
      ...(store === 'redis' ? { redis: redisSection(redis.url, { keyPrefix }) } : {}),
    });
  });
  afterAll(async () => {
    await gateway?.close();
  });

  const subject = (scope: BudgetSubject['scope'], id: string, period: 'day' | 'month' = 'day'): BudgetSubject => ({ scope, id, budget: { amount: budget, period } });
  const spent = (of: BudgetSubject) => gateway.app.switchyard.limits.budgets.spent(of);
  const held = (of: BudgetSubject) => gateway.app.switchyard.limits.budgets.held(of);
  /** Hold keys left in Redis (a settled hold leaves none). */
  const holdKeys = async () => (await dumpRedis(redis.url)).filter((entry) => entry.key.startsWith(`${keyPrefix}:budget:`) && /:(held|leases)$/.test(entry.key));

  /** Sends 50 requests at once, `secrets` taking turns; returns the answers and the worst case of one request. */
  async function race(secrets: string[]): Promise<{ answers: RawAnswer[]; worstCase: number }> {
    const bodies = Array.from({ length: 50 }, (_, index) => body(`race ${index}`));
    const worstCase = Math.max(...bodies.map(worstCaseOf));
    const answers = await Promise.all(bodies.map((request, index) => postJson(gateway.url, '/v1/chat/completions', request, { key: secrets[index % secrets.length] as string })));
    return { answers, worstCase };
  }

  function check(answers: RawAnswer[]): { served: RawAnswer[]; cost: number } {
    const served = answers.filter((answer) => answer.status === 200);
    for (const answer of answers.filter((candidate) => candidate.status !== 200)) {
      expect(answer.status).toBe(429);
      expect(answer.json.error).toMatchObject({ code: 'insufficient_quota', type: 'insufficient_quota', param: null });
      expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    expect(served.length).toBeGreaterThan(0);
    expect(served.length).toBeLessThan(answers.length);
    return { served, cost: served.reduce((sum, answer) => sum + costOf(answer.json.usage), 0) };
  }

  it('one key with a 0.0001/day budget: spend <= budget + one worst case; nothing held afterwards; spent = cost of the answers', async () => {
    const upstreamBefore = sim.stats().requests;
    const { answers, worstCase } = await race([solo.secret]);
    expect(worstCase).toBeLessThan(budget / 2); // several requests fit: the race is real
    const { served, cost } = check(answers);
    expect(sim.stats().requests - upstreamBefore).toBe(served.length); // refused ones never reached the backend
    expect(cost).toBeLessThanOrEqual(budget + worstCase + 1e-12);
    const key = subject('key', 'solo');
    await waitFor(async () => (await held(key)) === 0, 5_000, 'every hold to be settled');
    expect(await spent(key)).toBeCloseTo(cost, 12);
    expect(await spent(key)).toBeLessThanOrEqual(budget + worstCase + 1e-12);
    if (store === 'redis') expect(await holdKeys()).toEqual([]);
    // Used up now: a later request is refused for the rest of the period, not for "in flight".
    const after = await postJson(gateway.url, '/v1/chat/completions', body('after'), { key: solo.secret });
    expect(after.status).toBe(429);
    expect(after.json.error.message).toContain('used up');
    expect(after.headers.get('x-should-retry')).toBe('false');
  });

  it("a tenant budget shared by two keys (each with its own budget): the tenant's spend is bounded; the keys' holds refused by the tenant are released", async () => {
    const { answers, worstCase } = await race([teamOne.secret, teamTwo.secret]);
    const { served, cost } = check(answers);
    expect(cost).toBeLessThanOrEqual(budget + worstCase + 1e-12);
    const tenant = subject('tenant', 'team', 'month');
    const keys = [subject('key', 'team-one'), subject('key', 'team-two')];
    await waitFor(
      async () => (await held(tenant)) === 0 && (await held(keys[0] as BudgetSubject)) === 0 && (await held(keys[1] as BudgetSubject)) === 0,
      5_000,
      'every hold to be settled',
    );
    expect(await spent(tenant)).toBeCloseTo(cost, 12);
    // Each key is charged exactly its own served answers (answers alternate between the keys).
    const costByKey = [0, 1].map((turn) => answers.reduce((sum, answer, index) => (index % 2 === turn && answer.status === 200 ? sum + costOf(answer.json.usage) : sum), 0));
    expect(await spent(keys[0] as BudgetSubject)).toBeCloseTo(costByKey[0] as number, 12);
    expect(await spent(keys[1] as BudgetSubject)).toBeCloseTo(costByKey[1] as number, 12);
    expect(served.length).toBeGreaterThan(0);
    if (store === 'redis') expect(await holdKeys()).toEqual([]);
  });

  it('a request no backend could serve releases its hold and is charged nothing', async () => {
    const key = subject('key', 'failing');
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => postJson(gateway.url, '/v1/chat/completions', { ...body('broken'), model: 'broken' }, { key: failing.secret })),
    );
    for (const answer of answers) expect([502, 503, 429]).toContain(answer.status);
    await waitFor(async () => (await held(key)) === 0, 5_000, 'every hold to be released');
    expect(await spent(key)).toBe(0);
    // The budget is whole again: a served request passes.
    const ok = await postJson(gateway.url, '/v1/chat/completions', body('after failures'), { key: failing.secret });
    expect(ok.status).toBe(200);
    if (store === 'redis') {
      await waitFor(async () => (await holdKeys()).length === 0, 5_000, 'the hold keys to go');
    }
  });
});
