// Command-line flags of `switchyard sim`. Parsing only: src/main.ts prints usage and
// errors and starts the simulator with the result.

import type { SimFailMode, SimFlavor, SimulatorOptions } from './types.ts';
import { validateOptions } from './options.ts';

type Kind = 'string' | 'int' | 'number' | 'boolean';

interface FlagSpec {
  key: keyof SimulatorOptions;
  kind: Kind;
  help: string;
}

const FLAGS: Readonly<Record<string, FlagSpec>> = {
  '--flavor': { key: 'flavor', kind: 'string', help: 'vllm | llamacpp | sglang (default vllm)' },
  '--model': { key: 'model', kind: 'string', help: 'served model id (default sim-model)' },
  '--host': { key: 'host', kind: 'string', help: 'listen address (default 127.0.0.1)' },
  '--port': { key: 'port', kind: 'int', help: 'listen port (default 8000 for vllm, 8080 for llamacpp; 0 = free)' },
  '--ttft-ms': { key: 'ttftMs', kind: 'number', help: 'delay before the first token in ms (default 0)' },
  '--tokens-per-second': { key: 'tokensPerSecond', kind: 'number', help: 'token rate after the first; 0 = no delay (default 0)' },
  '--prefill-tokens-per-second': { key: 'prefillTokensPerSecond', kind: 'number', help: 'prompt tokens prefilled per second, added to the TTFT (default 0 = free)' },
  '--batch-slowdown': { key: 'batchSlowdown', kind: 'number', help: 'per-sequence decode slows to rate / (1 + this × (running − 1)) (default 0)' },
  '--max-concurrency': { key: 'maxConcurrency', kind: 'int', help: 'slots; more requests queue (default 64 vllm, 4 llamacpp)' },
  '--max-model-len': { key: 'maxModelLen', kind: 'int', help: 'context length in tokens (default 8192)' },
  '--fail-rate': { key: 'failRate', kind: 'number', help: 'probability 0..1 that a request fails (default 0)' },
  '--fail-mode': { key: 'failMode', kind: 'string', help: '500 | 429 | reset | hang | die-mid-stream (default 500)' },
  '--reasoning': { key: 'reasoning', kind: 'boolean', help: 'emit reasoning tokens before the answer' },
  '--embedding-dim': { key: 'embeddingDim', kind: 'int', help: 'embedding dimension (default 384)' },
  '--api-key': { key: 'apiKey', kind: 'string', help: 'require this key, like the runtime does' },
  '--loading-ms': { key: 'loadingMs', kind: 'number', help: 'stay in the loading state this long after start' },
  '--seed': { key: 'seed', kind: 'int', help: 'seed of generated text and injected failures (default 0)' },
  '--default-max-tokens': { key: 'defaultMaxTokens', kind: 'int', help: 'completion length without max_tokens (default 16)' },
  '--no-metrics': { key: 'metrics', kind: 'boolean', help: 'llamacpp: answer /metrics with 501 (like running without --metrics)' },
  '--no-reranking': { key: 'reranking', kind: 'boolean', help: 'answer /v1/rerank like a runtime without a reranker model' },
};

/** The runtimes' own default ports, so clients configured for them just work. */
const defaultPorts: Record<SimFlavor, number> = { vllm: 8000, llamacpp: 8080, sglang: 30000 };

function parseValue(flag: string, kind: Kind, raw: string): string | number | boolean {
  if (kind === 'string') return raw;
  if (kind === 'boolean') {
    if (raw === 'true') return true;
    if (raw === 'false') return false;
    throw new Error(`${flag} takes true or false, got "${raw}"`);
  }
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || (kind === 'int' && !Number.isInteger(value))) {
    throw new Error(`${flag} needs ${kind === 'int' ? 'an integer' : 'a number'}, got "${raw}"`);
  }
  return value;
}

/** Parses `switchyard sim` flags (`--flag value` or `--flag=value`); throws a message naming the bad flag. */
export function parseSimArgs(argv: string[]): SimulatorOptions {
  const values: Partial<Record<keyof SimulatorOptions, string | number | boolean>> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const equals = arg.indexOf('=');
    const flag = arg.startsWith('--') && equals > 0 ? arg.slice(0, equals) : arg;
    const spec = FLAGS[flag];
    if (spec === undefined) {
      throw new Error(arg.startsWith('-') ? `unknown flag ${flag} (see --help)` : `unexpected argument "${arg}"`);
    }
    let raw: string;
    if (equals > 0 && arg.startsWith('--')) raw = arg.slice(equals + 1);
    else if (spec.kind === 'boolean') raw = 'true';
    else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new Error(`${flag} needs a value`);
      raw = next;
      i++;
    }
    let value = parseValue(flag, spec.kind, raw);
    if (flag === '--no-metrics' || flag === '--no-reranking') value = !value;
    values[spec.key] = value;
  }

  const flavor = (values.flavor ?? 'vllm') as SimFlavor;
  if (flavor !== 'vllm' && flavor !== 'llamacpp' && flavor !== 'sglang') throw new Error(`--flavor must be vllm, llamacpp or sglang, got "${String(flavor)}"`);
  const failMode = values.failMode as SimFailMode | undefined;
  const options: SimulatorOptions = {
    ...(values as Partial<SimulatorOptions>),
    flavor,
    model: typeof values.model === 'string' ? values.model : 'sim-model',
    port: typeof values.port === 'number' ? values.port : defaultPorts[flavor],
  };
  if (failMode !== undefined) options.failMode = failMode;
  try {
    validateOptions(options);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const flagName = Object.entries(FLAGS).find(([, spec]) => message.includes(` ${spec.key} `))?.[0];
    throw new Error(flagName !== undefined ? `${flagName}: ${message}` : message);
  }
  return options;
}

/** Usage text for `switchyard sim --help`. */
export function simUsage(): string {
  const width = Math.max(...Object.keys(FLAGS).map((flag) => flag.length)) + 2;
  const lines = Object.entries(FLAGS).map(([flag, spec]) => {
    const value = spec.kind === 'boolean' ? '' : ' <value>';
    return `  ${(flag + value).padEnd(width + 8)} ${spec.help}`;
  });
  return ['Usage: switchyard sim [flags]', '', 'Runs an OpenAI-compatible server that impersonates vLLM, llama.cpp (llama-server) or SGLang.', '', 'Flags:', ...lines].join('\n');
}
