/**
 * The simulator's llama.cpp flavour must look like the real llama-server: the
 * same checks (test/e2e/conformance/llamacpp-shape.ts), written once, run
 * against a real server and against the simulator started the same way.
 * A difference fails here — fix the simulator (src/sim/flavor-llamacpp.ts and its
 * completions-llamacpp.ts, surfaces-llamacpp.ts) or,
 * after bumping llama.cpp, re-record the fixtures and update the checks.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';

import { startSimulator } from '../../src/sim/simulator.ts';
import { llamacppConformance, type LlamaTarget } from './conformance/llamacpp-shape.ts';
import { llamacppSurfaceConformance } from './conformance/llamacpp-surfaces-shape.ts';
import { afterStreamCloseMs, Cleanup, SERVER_ALIAS } from './helpers/e2e.ts';
import { startLlamaServer } from './helpers/llama-server.ts';

const SLOTS = 2;
const CTX = 4096;
const cleanup = new Cleanup();
const targets: Record<'real' | 'simulator', LlamaTarget> = {
  real: { name: 'real', url: '', alias: SERVER_ALIAS, slots: SLOTS, ctx: CTX },
  simulator: { name: 'simulator', url: '', alias: SERVER_ALIAS, slots: SLOTS, ctx: CTX },
};

beforeAll(async () => {
  const server = await startLlamaServer({ alias: SERVER_ALIAS, slots: SLOTS, ctx: CTX });
  cleanup.add(() => server.close());
  targets.real.url = server.url;
  // the same alias, slots and per-slot context; a pace like the tiny model's, so long streams last seconds
  // no --reranking on the real one, so no reranker on the simulator either
  const simulator = await startSimulator({ flavor: 'llamacpp', model: SERVER_ALIAS, maxConcurrency: SLOTS, maxModelLen: CTX, tokensPerSecond: 300, reranking: false });
  cleanup.add(() => simulator.close());
  targets.simulator.url = simulator.url;
});

afterAll(() => cleanup.run());

describe.each(['real', 'simulator'] as const)('llama.cpp conformance: %s', (which) => {
  it.each([...llamacppConformance, ...llamacppSurfaceConformance].map((check) => [check.name, check] as const))('%s', async (_name, check) => {
    // llama-server (and the simulator, like it) drops a keep-alive connection ~5-10 ms after a streamed answer:
    // let the previous check's connection close before this one's client may reuse it.
    await new Promise((resolve) => setTimeout(resolve, afterStreamCloseMs));
    await check.run(targets[which]);
  });
});
