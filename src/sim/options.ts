import type { SimFailMode, SimFlavor, SimulatorOptions } from './types.ts';

/** Options with every default filled in; the engine reads these live, so update() mutates them. */
export interface ResolvedOptions {
  flavor: SimFlavor;
  model: string;
  host: string;
  port: number;
  ttftMs: number;
  tokensPerSecond: number;
  prefillTokensPerSecond: number;
  batchSlowdown: number;
  maxConcurrency: number;
  maxModelLen: number;
  failRate: number;
  failMode: SimFailMode;
  reasoning: boolean;
  embeddingDim: number;
  apiKey: string | undefined;
  loadingMs: number;
  defaultMaxTokens: number;
  seed: number;
  metrics: boolean;
  kvCacheTokens: number;
  reranking: boolean;
}

const FLAVORS: readonly SimFlavor[] = ['vllm', 'llamacpp', 'sglang'];
const FAIL_MODES: readonly SimFailMode[] = ['500', '429', 'reset', 'hang', 'die-mid-stream'];

/** The runtimes' own defaults: llama-server auto-picks 4 slots, vLLM batches far more. */
export function defaultConcurrency(flavor: SimFlavor): number {
  return flavor === 'llamacpp' ? 4 : 64;
}

function checkNumber(name: string, value: unknown, min: number, max: number, integer: boolean): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || Number.isNaN(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    const kind = integer ? 'an integer' : 'a number';
    throw new Error(`simulator option ${name} must be ${kind} between ${min} and ${max}, got ${String(value)}`);
  }
}

/** Throws a message naming the field for any option out of range; used by start and update alike. */
export function validateOptions(options: Partial<SimulatorOptions>): void {
  if (options.flavor !== undefined && !FLAVORS.includes(options.flavor)) {
    throw new Error(`simulator option flavor must be one of ${FLAVORS.join(', ')}, got ${String(options.flavor)}`);
  }
  if (options.model !== undefined && (typeof options.model !== 'string' || options.model === '')) {
    throw new Error('simulator option model must be a non-empty string');
  }
  if (options.failMode !== undefined && !FAIL_MODES.includes(options.failMode)) {
    throw new Error(`simulator option failMode must be one of ${FAIL_MODES.join(', ')}, got ${String(options.failMode)}`);
  }
  checkNumber('port', options.port, 0, 65535, true);
  checkNumber('ttftMs', options.ttftMs, 0, 3_600_000, false);
  checkNumber('tokensPerSecond', options.tokensPerSecond, 0, 1_000_000, false);
  checkNumber('prefillTokensPerSecond', options.prefillTokensPerSecond, 0, 1e9, false);
  checkNumber('batchSlowdown', options.batchSlowdown, 0, 100, false);
  checkNumber('maxConcurrency', options.maxConcurrency, 1, 100_000, true);
  checkNumber('maxModelLen', options.maxModelLen, 16, 100_000_000, true);
  checkNumber('failRate', options.failRate, 0, 1, false);
  checkNumber('embeddingDim', options.embeddingDim, 1, 65_536, true);
  checkNumber('loadingMs', options.loadingMs, 0, 3_600_000, false);
  checkNumber('defaultMaxTokens', options.defaultMaxTokens, 1, 1_000_000, true);
  checkNumber('seed', options.seed, -(2 ** 53), 2 ** 53, true);
  checkNumber('kvCacheTokens', options.kvCacheTokens, 1, 1e12, true);
  if (options.reranking !== undefined && typeof options.reranking !== 'boolean') {
    throw new Error('simulator option reranking must be a boolean');
  }
  if (options.apiKey !== undefined && typeof options.apiKey !== 'string') {
    throw new Error('simulator option apiKey must be a string');
  }
}

export function resolveOptions(options: SimulatorOptions): ResolvedOptions {
  validateOptions(options);
  if (options.flavor === undefined || options.model === undefined) {
    throw new Error('simulator options flavor and model are required');
  }
  const maxModelLen = options.maxModelLen ?? 8192;
  return {
    flavor: options.flavor,
    model: options.model,
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 0,
    ttftMs: options.ttftMs ?? 0,
    tokensPerSecond: options.tokensPerSecond ?? 0,
    prefillTokensPerSecond: options.prefillTokensPerSecond ?? 0,
    batchSlowdown: options.batchSlowdown ?? 0,
    maxConcurrency: options.maxConcurrency ?? defaultConcurrency(options.flavor),
    maxModelLen,
    failRate: options.failRate ?? 0,
    failMode: options.failMode ?? '500',
    reasoning: options.reasoning ?? false,
    embeddingDim: options.embeddingDim ?? 384,
    apiKey: options.apiKey === '' ? undefined : options.apiKey,
    loadingMs: options.loadingMs ?? 0,
    defaultMaxTokens: options.defaultMaxTokens ?? 16,
    seed: options.seed ?? 0,
    metrics: options.metrics ?? true,
    kvCacheTokens: options.kvCacheTokens ?? maxModelLen * 8,
    reranking: options.reranking ?? true,
  };
}
