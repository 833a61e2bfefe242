/**
 * Trace replay: how well each routing policy spends money and keeps the TTFT
 * SLO on a mixed fleet, against a perfect-foresight bound.
 *
 *   node bin/node24.js bench/trace-replay.ts [--speed 4] [--shapes ramp-burst,short-burst,idle-gaps]
 *       [--policies cheapest,fastest,balanced,least-loaded,round-robin] [--seed 7] [--out bench/results/trace]
 *
 * Fleet (simulators, in this process): two identical cheap llama.cpp-flavoured boxes (4 slots, 25 tokens/s per
 * slot, prefill 2,000 tokens/s, priced per hour) and one premium vLLM-flavoured backend (32 concurrent, 60
 * tokens/s per stream slowing as the batch grows, prefill 20,000 tokens/s, priced per token). Requests are
 * streamed chat completions with prompts of 40–5,000 tokens (log-uniform) and answers of 20–300 tokens
 * (log-uniform; the client asks max_tokens 512 and the model stops earlier, which the gateway cannot see),
 * arriving as a seeded Poisson process whose rate follows the trace shape. SLO: TTFT ≤ 1 s.
 *
 * Every policy runs on the identical trace against a fresh fleet and a fresh gateway (cold start included).
 * `--speed k` runs everything k× faster (token rates × k, times and the SLO ÷ k) so a 2-minute trace takes 30 s.
 *
 * Saving = what the premium backend would have cost for every request − what it cost for those sent there (the
 * boxes cost the same whatever the policy). The perfect-foresight bound knows each request's exact service
 * time and sends it to a box whenever one can start it within the SLO (earliest start first), else to
 * premium; "of bound" is a policy's saving over the bound's.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { validateConfig } from '../src/config/load.ts';
import { startGateway } from '../src/server.ts';
import { createRng } from '../src/sim/generate.ts';
import { startSimulator, type Simulator } from '../src/sim/simulator.ts';

const { values } = parseArgs({
  options: {
    speed: { type: 'string', default: '4' },
    shapes: { type: 'string', default: 'ramp-burst,short-burst,idle-gaps' },
    policies: { type: 'string', default: 'cheapest,fastest,balanced,least-loaded,round-robin' },
    seed: { type: 'string', default: '7' },
    out: { type: 'string', default: 'bench/results/trace' },
  },
});
const speed = Number(values.speed);
const seed = Number(values.seed);

// The fleet in real-time units (divided by `speed` when run).
const BOX = { slots: 4, tokensPerSecond: 25, prefillTokensPerSecond: 2_000, ttftMs: 30, perHour: 0.4 };
const PREMIUM = { concurrency: 32, tokensPerSecond: 60, prefillTokensPerSecond: 20_000, ttftMs: 20, batchSlowdown: 0.01, inputPer1M: 0.5, outputPer1M: 2 };
const SLO_MS = 1_000;
const MAX_TOKENS = 512;

interface TraceRequest {
  at: number; // ms from the start, real time
  promptTokens: number;
  outputTokens: number;
}

const logUniform = (random: () => number, low: number, high: number) => Math.round(Math.exp(Math.log(low) + random() * (Math.log(high) - Math.log(low))));

/** Mean service of a box request (ms): prefill of the mean prompt + decode of the mean answer. */
function boxCapacityPerSecond(): number {
  const meanPrompt = (5000 - 40) / Math.log(5000 / 40);
  const meanOutput = (300 - 20) / Math.log(300 / 20);
  const service = BOX.ttftMs + (meanPrompt * 1000) / BOX.prefillTokensPerSecond + (meanOutput * 1000) / BOX.tokensPerSecond;
  return (2 * BOX.slots * 1000) / service;
}

/** Arrival rate (requests/s) at time t (s) as a multiple of the boxes' capacity, per shape. */
const SHAPES: Record<string, { seconds: number; load: (t: number) => number }> = {
  // Cold start at low load, ramp to a burst of 2.4× the boxes' capacity, back down.
  'ramp-burst': { seconds: 120, load: (t) => (t < 40 ? 0.5 : t < 60 ? 0.5 + ((t - 40) / 20) * 1.9 : t < 90 ? 2.4 : 0.5) },
  // Short bursts a short queue can absorb: accepting it pays.
  'short-burst': { seconds: 120, load: (t) => (t % 40 >= 30 && t % 40 < 36 ? 1.6 : 0.4) },
  // Busy spells of 15 s separated by idle gaps of 40 s (longer than the 30 s after which figures used to expire).
  'idle-gaps': { seconds: 205, load: (t) => (t % 55 < 15 ? 1.2 : 0) },
};

function trace(shape: string, random: () => number): TraceRequest[] {
  const { seconds, load } = SHAPES[shape] as (typeof SHAPES)[string];
  const capacity = boxCapacityPerSecond();
  const requests: TraceRequest[] = [];
  // Thinning: candidates at the peak rate, kept with probability rate(t) / peak.
  const peak = 2.4 * capacity;
  let t = 0;
  for (;;) {
    t += -Math.log(1 - random()) / peak;
    if (t >= seconds) break;
    if (random() * peak > load(t) * capacity) continue;
    requests.push({ at: t * 1000, promptTokens: logUniform(random, 40, 5000), outputTokens: logUniform(random, 20, 300) });
  }
  return requests;
}

const premiumCost = (request: TraceRequest) => (PREMIUM.inputPer1M * request.promptTokens + PREMIUM.outputPer1M * request.outputTokens) / 1e6;

/** Perfect foresight: exact service times; a box whenever one can start the request within the SLO. */
function foresight(requests: readonly TraceRequest[]): { premium: Set<TraceRequest> } {
  const slots = [Array<number>(BOX.slots).fill(0), Array<number>(BOX.slots).fill(0)];
  const premium = new Set<TraceRequest>();
  for (const request of requests) {
    const prefill = BOX.ttftMs + (request.promptTokens * 1000) / BOX.prefillTokensPerSecond;
    const service = prefill + (Math.max(0, request.outputTokens - 1) * 1000) / BOX.tokensPerSecond;
    let best: { box: number[]; slot: number; start: number } | undefined;
    for (const box of slots) {
      let slot = 0;
      for (let index = 1; index < box.length; index++) if ((box[index] as number) < (box[slot] as number)) slot = index;
      const start = Math.max(request.at, box[slot] as number);
      if (start - request.at + prefill <= SLO_MS && (best === undefined || start < best.start)) best = { box, slot, start };
    }
    if (best === undefined) premium.add(request);
    else best.box[best.slot] = best.start + service;
  }
  return { premium };
}

function words(random: () => number, tokens: number): string {
  // The gateway and the simulator both count about 4 characters per token; a random start defeats prefix caches.
  const parts: string[] = [`q${Math.floor(random() * 1e9)}`];
  let length = parts[0]?.length ?? 0;
  while (length < tokens * 4 - 4) {
    const word = `w${Math.floor(random() * 1e6)}`;
    parts.push(word);
    length += word.length + 1;
  }
  return parts.join(' ');
}

interface Outcome {
  request: TraceRequest;
  backend: string;
  reason: string;
  ttftMs: number; // real-time units
  ok: boolean;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function runPolicy(policy: string, requests: readonly TraceRequest[], random: () => number) {
  const box = (index: number) =>
    startSimulator({
      flavor: 'llamacpp',
      model: 'qwen3-8b-q4',
      maxConcurrency: BOX.slots,
      tokensPerSecond: BOX.tokensPerSecond * speed,
      prefillTokensPerSecond: BOX.prefillTokensPerSecond * speed,
      ttftMs: BOX.ttftMs / speed,
      maxModelLen: 16_384,
      seed: index,
    });
  const sims: Simulator[] = [
    await box(1),
    await box(2),
    await startSimulator({
      flavor: 'vllm',
      model: 'Qwen/Qwen3-8B',
      maxConcurrency: PREMIUM.concurrency,
      tokensPerSecond: PREMIUM.tokensPerSecond * speed,
      prefillTokensPerSecond: PREMIUM.prefillTokensPerSecond * speed,
      ttftMs: PREMIUM.ttftMs / speed,
      batchSlowdown: PREMIUM.batchSlowdown,
      maxModelLen: 16_384,
    }),
  ];
  const [boxA, boxB, premium] = sims as [Simulator, Simulator, Simulator];
  // What an operator knows of each machine before it served anything (backends[].prior), on the run's time scale.
  const quick = { scrape: { intervalMs: 250, staleAfterMs: 1_000 }, health: { intervalMs: 500 } };
  // (Time to first token for a 1,000-token prompt and one slot's speed, each a little worse than the truth.)
  const boxPrior = { ttftMs: 600 / speed, tokensPerSecond: 20 * speed };
  const premiumPrior = { ttftMs: 300 / speed, tokensPerSecond: 50 * speed };
  const config = validateConfig(
    {
      logging: { level: 'warn' },
      backends: [
        { id: 'box-a', kind: 'llamacpp', url: boxA.url, cost: { perHour: BOX.perHour }, prior: boxPrior, ...quick },
        { id: 'box-b', kind: 'llamacpp', url: boxB.url, cost: { perHour: BOX.perHour }, prior: boxPrior, ...quick },
        {
          id: 'premium',
          kind: 'vllm',
          url: premium.url,
          maxConcurrency: PREMIUM.concurrency,
          cost: { inputPer1M: PREMIUM.inputPer1M, outputPer1M: PREMIUM.outputPer1M },
          prior: premiumPrior,
          ...quick,
        },
      ],
      models: [
        {
          name: 'm',
          policy,
          slo: { ttftMs: SLO_MS / speed },
          targets: [
            { backend: 'box-a', model: 'qwen3-8b-q4' },
            { backend: 'box-b', model: 'qwen3-8b-q4' },
            { backend: 'premium', model: 'Qwen/Qwen3-8B' },
          ],
        },
      ],
    },
    'trace',
    {},
  );
  const gateway = await startGateway(config, { port: 0, host: '127.0.0.1', logger: pino({ level: 'warn' }) });
  const gatewayStarted = Date.now();
  // The boxes' slot counts come from discovery (/props): wait for them, as a running gateway would have them.
  for (let wait = 0; wait < 50; wait++) {
    const admin = (await (await fetch(`${gateway.url}/admin/backends`)).json()) as { backends: Array<{ load: { slots: number | null } }> };
    if (admin.backends.filter((backend) => backend.load.slots === BOX.slots).length === 2) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const bodies = requests.map((request) =>
    JSON.stringify({
      model: 'm',
      messages: [{ role: 'user', content: words(random, request.promptTokens - 8) }],
      max_tokens: MAX_TOKENS,
      stream: true,
      sim_output_tokens: request.outputTokens,
    }),
  );
  const start = performance.now();
  const outcomes = await Promise.all(
    requests.map(async (request, index): Promise<Outcome> => {
      const due = start + request.at / speed;
      const delay = due - performance.now();
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      const sent = performance.now();
      try {
        const response = await fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: bodies[index] });
        const backend = response.headers.get('x-switchyard-backend') ?? 'none';
        const reason = response.headers.get('x-switchyard-route-reason') ?? '';
        const reader = (response.body as ReadableStream<Uint8Array>).getReader();
        let ttftMs = Number.NaN;
        for (;;) {
          const { done } = await reader.read();
          if (Number.isNaN(ttftMs)) ttftMs = (performance.now() - sent) * speed;
          if (done) break;
        }
        return { request, backend, reason, ttftMs, ok: response.status === 200 };
      } catch {
        return { request, backend: 'error', reason: 'error', ttftMs: Number.POSITIVE_INFINITY, ok: false };
      }
    }),
  );
  const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
  if (process.env.TRACE_DEBUG) {
    const admin = (await (await fetch(`${gateway.url}/admin/backends`)).json()) as { backends: Array<Record<string, unknown>> };
    for (const backend of admin.backends) console.error(policy, backend.id, JSON.stringify(backend.latency));
    for (const line of metrics.split('\n')) if (line.startsWith('switchyard_route_ttft_prediction_ratio_bucket')) console.error(line);
  }
  const wallSeconds = (Date.now() - gatewayStarted) / 1000;
  await gateway.shutdown('trace done');
  for (const simulator of sims) await simulator.close();
  // What the fleet really cost over the gateway's lifetime: both boxes were on; premium billed its tokens.
  let fleetReal = (2 * BOX.perHour * wallSeconds) / 3600;
  for (const outcome of outcomes) if (outcome.backend === 'premium' && outcome.ok) fleetReal += premiumCost(outcome.request);
  let fleetMetric = 0;
  for (const line of metrics.split('\n')) if (line.startsWith('switchyard_backend_cost_total{')) fleetMetric += Number(line.slice(line.lastIndexOf(' ') + 1));
  return { outcomes, fleetReal, fleetMetric };
}

async function main(): Promise<void> {
  const shapes = String(values.shapes).split(',');
  const policies = String(values.policies).split(',');
  const lines: string[] = [
    '## Trace replay',
    '',
    `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC · speed ${speed}× · seed ${seed} · SLO TTFT ≤ ${SLO_MS} ms · box capacity ${boxCapacityPerSecond().toFixed(2)} req/s`,
    '',
  ];
  const json: Record<string, unknown> = { speed, seed, sloMs: SLO_MS, shapes: {} };
  for (const shape of shapes) {
    const requests = trace(shape, createRng(seed));
    const allPremium = requests.reduce((sum, request) => sum + premiumCost(request), 0);
    const bound = foresight(requests);
    const boundSaving = allPremium - [...bound.premium].reduce((sum, request) => sum + premiumCost(request), 0);
    lines.push(`### ${shape}: ${requests.length} requests over ${SHAPES[shape]?.seconds} s`, '');
    lines.push(
      `Perfect foresight sends ${requests.length - bound.premium.size} to the boxes, ${bound.premium.size} to premium: saving ${boundSaving.toFixed(4)} of ${allPremium.toFixed(4)}.`,
      '',
    );
    lines.push('| policy | within SLO | TTFT p50 ms | p95 ms | p99 ms | box-a / box-b / premium | saving | of bound | explore | fleet cost metric / real |');
    lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    const rows: unknown[] = [];
    for (const policy of policies) {
      const { outcomes, fleetReal, fleetMetric } = await runPolicy(policy, requests, createRng(seed + 1));
      const ttfts = outcomes.map((outcome) => outcome.ttftMs).sort((a, b) => a - b);
      const within = outcomes.filter((outcome) => outcome.ok && outcome.ttftMs <= SLO_MS).length / outcomes.length;
      const count = (backend: string) => outcomes.filter((outcome) => outcome.backend === backend).length;
      const spent = outcomes.filter((outcome) => outcome.backend === 'premium').reduce((sum, outcome) => sum + premiumCost(outcome.request), 0);
      const saving = allPremium - spent;
      const explore = outcomes.filter((outcome) => outcome.reason === 'explore').length;
      const row = {
        policy,
        withinSlo: within,
        p50: percentile(ttfts, 50),
        p95: percentile(ttfts, 95),
        p99: percentile(ttfts, 99),
        boxA: count('box-a'),
        boxB: count('box-b'),
        premium: count('premium'),
        errors: outcomes.filter((outcome) => !outcome.ok).length,
        saving,
        ofBound: boundSaving > 0 ? saving / boundSaving : Number.NaN,
        explore,
        fleetMetric,
        fleetReal,
      };
      rows.push(row);
      lines.push(
        `| ${policy} | ${(within * 100).toFixed(1)}% | ${row.p50.toFixed(0)} | ${row.p95.toFixed(0)} | ${row.p99.toFixed(0)} | ${row.boxA} / ${row.boxB} / ${row.premium}${row.errors ? ` (${row.errors} errors)` : ''} | ${saving.toFixed(4)} | ${(row.ofBound * 100).toFixed(0)}% | ${explore} | ${(fleetMetric / fleetReal).toFixed(3)} |`,
      );
      if (process.env.TRACE_DEBUG) {
        for (const outcome of outcomes)
          if (outcome.ttftMs > SLO_MS)
            console.error(
              `  miss ${outcome.backend} ${outcome.reason} at ${(outcome.request.at / 1000).toFixed(1)} s prompt ${outcome.request.promptTokens} ttft ${outcome.ttftMs.toFixed(0)}`,
            );
      }
      console.error(`[trace] ${shape} ${policy}: ${(within * 100).toFixed(1)}% within SLO, ${(row.ofBound * 100).toFixed(0)}% of the bound's saving`);
    }
    (json.shapes as Record<string, unknown>)[shape] = { requests: requests.length, boundSaving, allPremium, rows };
    lines.push('');
  }
  const report = lines.join('\n');
  console.log(report);
  mkdirSync(values.out as string, { recursive: true });
  writeFileSync(join(values.out as string, 'latest.md'), `${report}\n`);
  writeFileSync(join(values.out as string, 'latest.json'), `${JSON.stringify(json, null, 2)}\n`);
}

await main();
