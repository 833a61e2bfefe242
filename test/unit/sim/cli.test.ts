import { describe, expect, it } from 'vitest';
import { parseSimArgs, simUsage } from '../../../src/sim/cli.ts';

describe('switchyard sim flags', () => {
  it('parses every flag, in both --flag value and --flag=value forms', () => {
    const options = parseSimArgs([
      '--flavor',
      'llamacpp',
      '--model=qwen',
      '--host',
      '0.0.0.0',
      '--port',
      '9000',
      '--ttft-ms',
      '50',
      '--tokens-per-second=30',
      '--max-concurrency',
      '2',
      '--max-model-len',
      '4096',
      '--fail-rate',
      '0.1',
      '--fail-mode',
      'die-mid-stream',
      '--reasoning',
      '--embedding-dim',
      '64',
      '--api-key',
      'k',
      '--loading-ms',
      '500',
      '--seed',
      '9',
      '--default-max-tokens',
      '32',
      '--no-metrics',
    ]);
    expect(options).toEqual({
      flavor: 'llamacpp',
      model: 'qwen',
      host: '0.0.0.0',
      port: 9000,
      ttftMs: 50,
      tokensPerSecond: 30,
      maxConcurrency: 2,
      maxModelLen: 4096,
      failRate: 0.1,
      failMode: 'die-mid-stream',
      reasoning: true,
      embeddingDim: 64,
      apiKey: 'k',
      loadingMs: 500,
      seed: 9,
      defaultMaxTokens: 32,
      metrics: false,
    });
  });

  it('defaults to the runtime ports and a model name', () => {
    expect(parseSimArgs([])).toEqual({ flavor: 'vllm', model: 'sim-model', port: 8000 });
    expect(parseSimArgs(['--flavor', 'llamacpp']).port).toBe(8080);
    expect(parseSimArgs(['--flavor', 'sglang']).port).toBe(30000);
    expect(parseSimArgs(['--reasoning=false']).reasoning).toBe(false);
  });

  it('names the bad flag in its error', () => {
    expect(() => parseSimArgs(['--flavour', 'vllm'])).toThrow(/unknown flag --flavour/);
    expect(() => parseSimArgs(['--flavor', 'tgi'])).toThrow(/--flavor must be vllm, llamacpp or sglang/);
    expect(() => parseSimArgs(['--port'])).toThrow(/--port needs a value/);
    expect(() => parseSimArgs(['--port', 'x'])).toThrow(/--port needs an integer/);
    expect(() => parseSimArgs(['--fail-rate', '2'])).toThrow(/--fail-rate: .*failRate must be/);
    expect(() => parseSimArgs(['--fail-mode', 'explode'])).toThrow(/--fail-mode: .*failMode must be one of/);
    expect(() => parseSimArgs(['stray'])).toThrow(/unexpected argument "stray"/);
  });

  it('lists every flag in the usage text', () => {
    const usage = simUsage();
    for (const flag of ['--flavor', '--ttft-ms', '--fail-mode', '--default-max-tokens', '--reasoning']) expect(usage).toContain(flag);
  });
});
