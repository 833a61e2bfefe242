/**
 * `switchyard demo`: two simulated backends (vLLM- and llama.cpp-flavoured)
 * and a gateway in front of them on embedded defaults (no Redis).
 */
import { fileURLToPath } from 'node:url';
import { loadConfigFile } from './config/load.ts';
import { startGateway, type RunningGateway } from './server.ts';
import { startSimulator, type Simulator } from './sim/simulator.ts';

/** The demo's parts, for the CLI to print and stop. */
export interface RunningDemo {
  gateway: RunningGateway;
  simulators: Simulator[];
  stop(): Promise<void>;
}

export const demoConfigPath = fileURLToPath(new URL('../config/demo.yaml', import.meta.url));

/** Starts the simulators, then the gateway on PORT (default 8080). */
export async function startDemo(env: NodeJS.ProcessEnv = process.env): Promise<RunningDemo> {
  const vllm = await startSimulator({ flavor: 'vllm', model: 'Qwen/Qwen3-8B', ttftMs: 120, tokensPerSecond: 60, reasoning: false });
  const llamacpp = await startSimulator({ flavor: 'llamacpp', model: 'qwen3-8b-q4', ttftMs: 250, tokensPerSecond: 25, maxConcurrency: 4 });
  const config = loadConfigFile(demoConfigPath, { ...env, DEMO_VLLM_URL: vllm.url, DEMO_LLAMACPP_URL: llamacpp.url });
  const gateway = await startGateway(config);
  const simulators = [vllm, llamacpp];
  return {
    gateway,
    simulators,
    async stop() {
      await gateway.shutdown('demo stopped');
      await Promise.all(simulators.map((simulator) => simulator.close()));
    },
  };
}
