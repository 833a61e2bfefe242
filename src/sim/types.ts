// Public types of the backend simulator. They live apart from simulator.ts so the
// flavour and engine modules can share them without importing the server module.

/** Which runtime the simulator impersonates. */
export type SimFlavor = 'vllm' | 'llamacpp' | 'sglang';

/** How an injected failure (see `failRate`) shows up to the client. */
export type SimFailMode = '500' | '429' | 'reset' | 'hang' | 'die-mid-stream';

/** Options of one simulated backend; every field but `flavor` and `model` is optional. */
export interface SimulatorOptions {
  flavor: SimFlavor;
  /** Served model id (llama.cpp: the alias it always reports, ignoring the request's model). */
  model: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 = a free port. */
  port?: number;
  /** Delay before the first token, in ms (default 0). */
  ttftMs?: number;
  /** Tokens per second after the first one; 0 = no delay between tokens (default 0). */
  tokensPerSecond?: number;
  /** Prompt tokens prefilled per second: TTFT = ttftMs + prompt tokens / this rate (0 = prompt length costs nothing; default 0). */
  prefillTokensPerSecond?: number;
  /**
   * How decoding slows as sequences share the batch: each running sequence decodes at
   * tokensPerSecond / (1 + batchSlowdown × (running − 1)) (0 = every slot at full speed; default 0).
   */
  batchSlowdown?: number;
  /** Slots; extra requests queue (waiting/deferred). Default 4 (llamacpp) / 64 (vllm). */
  maxConcurrency?: number;
  /** Context length in tokens (default 8192). */
  maxModelLen?: number;
  /** 0..1 probability that a request fails with `failMode` (deterministic, seeded from `seed`). */
  failRate?: number;
  /** Default '500'. */
  failMode?: SimFailMode;
  /** Emit reasoning before the content, with the runtime's field name. */
  reasoning?: boolean;
  /** Embedding dimension (default 384). */
  embeddingDim?: number;
  /** When set, require the key the way the runtime does. */
  apiKey?: string;
  /** Start in the loading state for this long (ms). */
  loadingMs?: number;
  /** Completion length when the request sets no max_tokens (default 16). */
  defaultMaxTokens?: number;
  /** Seed of the text generator and of the failure PRNG (default 0). */
  seed?: number;
  /** Default true; llama.cpp without metrics answers /metrics with 501. Ignored for vLLM. */
  metrics?: boolean;
  /**
   * Notional vLLM KV-cache capacity in tokens, the denominator of
   * vllm:kv_cache_usage_perc (default maxModelLen * 8). Extension beyond the brief.
   */
  kvCacheTokens?: number;
  /**
   * Serve /v1/rerank (default true). False answers it as a runtime started without a reranker:
   * llama.cpp 501 "Start it with `--reranking`", vLLM 400 "does not support Rerank".
   */
  reranking?: boolean;
}

/** Last inference request seen, so tests can check what a gateway forwarded. */
export interface SimulatedRequest {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

/** Counters of one simulator instance. */
export interface SimulatorStats {
  /** Inference requests received (chat, completions, embeddings, responses, messages, count_tokens, rerank), valid or not. */
  requests: number;
  /** Requests holding a slot now. */
  running: number;
  /** Requests queued for a slot now. */
  waiting: number;
  /** The longest the queue for a slot has been. */
  peakWaiting: number;
  /** The most requests it held at once, running and waiting. */
  peakHeld: number;
  /** Requests answered in full. */
  completed: number;
  /** Requests whose client went away before the answer was complete. */
  cancelled: number;
  /** Requests answered with an error status, or broken by an injected failure. */
  failed: number;
  lastRequest?: SimulatedRequest;
}

/** A running simulator. */
export interface Simulator {
  url: string;
  port: number;
  options: Readonly<SimulatorOptions>;
  stats(): SimulatorStats;
  /** Change behaviour live (ttft, failRate, failMode, tokensPerSecond, maxConcurrency, loadingMs...). */
  update(partial: Partial<SimulatorOptions>): void;
  setLoading(loading: boolean): void;
  /** Closes the server and destroys open sockets. */
  close(): Promise<void>;
}
