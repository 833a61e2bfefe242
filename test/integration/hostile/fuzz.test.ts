/**
 * A bounded, seeded fuzz run of mutated requests on every API surface, through a
 * real gateway in front of vLLM- and llama.cpp-flavoured simulators, with the
 * response cache on. What must hold for every case: the gateway itself never
 * answers 5xx, never hangs, and every error is in the shape of the surface that
 * was called. Reproduce a failure with FUZZ_SEED=<seed> (printed) and
 * FUZZ_CASES=<n>.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Simulator } from '../../../src/sim/simulator.ts';
import { backendFor, startSim, startTestGateway, type TestGateway } from '../../helpers/gateway.ts';
import { fuzzSurfaces, type FuzzSurface } from './fuzz-surfaces.ts';
import { mutateRequest, random, type Random } from './fuzz-mutate.ts';

const seed = Number(process.env.FUZZ_SEED ?? 20261203);
const cases = Number(process.env.FUZZ_CASES ?? 4000);
const concurrency = 16;
const perRequestMs = 15_000;

let vllm: Simulator;
let llama: Simulator;
let gateway: TestGateway;

beforeAll(async () => {
  vllm = await startSim({ flavor: 'vllm' });
  llama = await startSim({ flavor: 'llamacpp' });
  gateway = await startTestGateway({
    logging: { level: 'warn' },
    backends: [backendFor('vllm', vllm), backendFor('llama', llama)],
    models: [
      { name: 'm-vllm', targets: [{ backend: 'vllm', model: 'Qwen/Qwen3-8B' }] },
      { name: 'm-llama', targets: [{ backend: 'llama', model: 'qwen3-8b-q4' }] },
      {
        name: 'm-both',
        targets: [
          { backend: 'vllm', model: 'Qwen/Qwen3-8B' },
          { backend: 'llama', model: 'qwen3-8b-q4' },
        ],
      },
    ],
  });
});

afterAll(async () => {
  await gateway?.close();
  await vllm?.close();
  await llama?.close();
});

interface Failure {
  index: number;
  surface: string;
  problem: string;
  status: number;
  request: string;
  answer: string;
}

/** Checks one answer; returns what is wrong with it, or undefined. */
function problemWith(surface: FuzzSurface, status: number, contentType: string, text: string): string | undefined {
  if (status >= 500) return `gateway answered ${status}`;
  if (status >= 400) {
    if (!contentType.includes('application/json')) return `error with content-type ${contentType}`;
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return 'error body is not JSON';
    }
    return surface.errorShapeProblem(body);
  }
  if (status !== 200) return `unexpected status ${status}`;
  if (contentType.includes('text/event-stream')) return surface.streamProblem(text);
  try {
    JSON.parse(text);
  } catch {
    return 'a 200 answer that is not JSON';
  }
  return undefined;
}

async function runCase(index: number, rng: Random, failures: Failure[]): Promise<void> {
  const surface = fuzzSurfaces[Math.floor(rng() * fuzzSurfaces.length)] as FuzzSurface;
  const { body, headers } = mutateRequest(rng, surface);
  const controller = AbortSignal.timeout(perRequestMs);
  let status = 0;
  let contentType = '';
  let text = '';
  try {
    const response = await fetch(`${gateway.url}${surface.path}`, {
      method: 'POST',
      body,
      headers: { ...surface.headers, ...headers },
      signal: controller,
    });
    status = response.status;
    contentType = response.headers.get('content-type') ?? '';
    text = await response.text();
  } catch (error) {
    failures.push({
      index,
      surface: surface.name,
      problem: `request failed: ${(error as Error).name}: ${(error as Error).message}`,
      status,
      request: body.slice(0, 300),
      answer: '',
    });
    return;
  }
  const problem = problemWith(surface, status, contentType, text);
  if (problem) failures.push({ index, surface: surface.name, problem, status, request: body.slice(0, 300), answer: text.slice(0, 300) });
}

describe(`hostile input: seeded fuzz run (FUZZ_SEED=${seed}, FUZZ_CASES=${cases})`, () => {
  it('never answers 5xx itself, never hangs, and every error has the shape of its surface', { timeout: 120_000 }, async () => {
    console.log(`fuzz: seed ${seed}, ${cases} cases over ${fuzzSurfaces.map((surface) => surface.name).join(', ')}`);
    const failures: Failure[] = [];
    let next = 0;
    // One generator per worker, derived from the seed, so a run is reproducible whatever the interleaving.
    const workers = Array.from({ length: concurrency }, async (_, worker) => {
      const rng = random(seed * 31 + worker);
      for (;;) {
        const index = next++;
        if (index >= cases) return;
        await runCase(index, rng, failures);
      }
    });
    await Promise.all(workers);
    const kinds = new Map<string, Failure>();
    for (const failure of failures) {
      const kind = `${failure.surface}: ${failure.problem.replace(/\d+/g, 'N').slice(0, 80)}`;
      if (!kinds.has(kind)) kinds.set(kind, failure);
    }
    const summary = [...kinds]
      .map(([kind, failure]) => `${kind}\n  e.g. case ${failure.index}: ${failure.request.slice(0, 160)} -> ${failure.status} ${failure.answer.slice(0, 160)}`)
      .join('\n');
    const errors = gateway.logs.filter((line) => line.includes('"level":50')).slice(0, 3);
    expect(failures.length, `${failures.length} of ${cases} cases failed, by kind:\n${summary}\ngateway errors:\n${errors.join('\n')}`).toBe(0);
    // The gateway still serves a plain request after the run.
    const answer = await gateway.client().chat.completions.create({ model: 'm-both', messages: [{ role: 'user', content: 'still there?' }], max_tokens: 4 });
    expect(answer.choices[0]?.message).toBeDefined();
  });
});
