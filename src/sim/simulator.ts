// The backend simulator: an OpenAI-compatible HTTP server that impersonates vLLM,
// llama.cpp or SGLang closely enough to test, demo and benchmark the gateway without a GPU.
// Plain node:http keeps the per-request cost tiny; everything that differs between
// the runtimes lives behind the Flavor interface (flavor-vllm.ts, flavor-llamacpp.ts, flavor-sglang.ts).
//
// The simulated model, so tests can predict it:
// - one word is one token; text comes from a fixed vocabulary picked by a hash of the
//   prompt and the seed (request `seed`, else options.seed), so answers are repeatable;
// - prompt tokens ~ ceil(chars / 4) per message + 4 per message + 3 (chat), +1 (text);
// - with max_tokens (or max_completion_tokens) it writes exactly that many tokens and
//   finishes "length"; without, it writes defaultMaxTokens and finishes "stop" (both
//   cut to the context, with the runtime's own rule for what does not fit);
// - tools give one call to the named or first function, unless tool_choice is "none" or
//   (with "auto") the last message is a tool result: then the answer is text;
// - `n` gives n choices (each its own seed), `stop` cuts the text before the first stop
//   string (finish "stop"), `logprobs` adds made-up but well-formed log probabilities,
//   `response_format` json_object / json_schema gives a JSON document (an instance of the
//   schema) that finishes "stop" when it fits; other sampling parameters are ignored;
// - /v1/responses and /v1/messages are chat underneath (as in both runtimes), rendered in
//   each surface's shape; /v1/rerank scores documents by the query words they contain.

import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Flavor, Route, SimView, SlotView } from './flavor.ts';
import { createLlamacppFlavor } from './flavor-llamacpp.ts';
import { createSglangFlavor } from './flavor-sglang.ts';
import { createVllmFlavor } from './flavor-vllm.ts';
import type { Counters, Job } from './generation.ts';
import { createRng, IdSource } from './generate.ts';
import { handleInference, type InferenceContext, sendReply } from './inference.ts';
import { MetricsState } from './metrics-state.ts';
import { defaultConcurrency, type ResolvedOptions, resolveOptions, validateOptions } from './options.ts';
import { PrefixCache } from './plan.ts';
import { SlotScheduler } from './scheduler.ts';
import type { SimFlavor, SimulatedRequest, Simulator, SimulatorOptions, SimulatorStats } from './types.ts';

export type { SimFailMode, SimFlavor, SimulatedRequest, Simulator, SimulatorOptions, SimulatorStats } from './types.ts';

const flavors: Record<SimFlavor, (options: ResolvedOptions, ids: IdSource) => Flavor> = {
  vllm: createVllmFlavor,
  llamacpp: createLlamacppFlavor,
  sglang: createSglangFlavor,
};

function createFlavor(context: { options: ResolvedOptions; ids: IdSource }): Flavor {
  return flavors[context.options.flavor](context.options, context.ids);
}

/** The options as the simulator runs them, defaults included (apiKey only when set). */
function publicView(resolved: ResolvedOptions, target: SimulatorOptions): void {
  const { apiKey, ...rest } = resolved;
  Object.assign(target, rest);
  if (apiKey !== undefined) target.apiKey = apiKey;
  else delete target.apiKey;
}

/** The POST routes with a JSON body that the engine answers (counted in stats().requests). */
function isInferenceRoute(route: Route): boolean {
  switch (route) {
    case 'chat':
    case 'completions':
    case 'embeddings':
    case 'responses':
    case 'messages':
    case 'count-tokens':
    case 'rerank':
      return true;
    default:
      return false;
  }
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** Starts a simulated backend listening on options.host:options.port (0 = a free port). */
export async function startSimulator(options: SimulatorOptions): Promise<Simulator> {
  const resolved = resolveOptions(options);
  const publicOptions: SimulatorOptions = { flavor: resolved.flavor, model: resolved.model };
  const ids = new IdSource(resolved.seed);
  const flavor = createFlavor({ options: resolved, ids });
  const scheduler = new SlotScheduler(resolved.maxConcurrency);
  const metrics = new MetricsState();
  const counters: Counters = { requests: 0, completed: 0, cancelled: 0, failed: 0 };
  const running = new Set<Job>();
  const sockets = new Set<Socket>();
  let lastRequest: SimulatedRequest | undefined;
  let failRandom = createRng(resolved.seed);
  let taskCounter = 0;
  let loading = false;
  let loadingTimer: NodeJS.Timeout | undefined;

  // Requests in progress per connection (closesAfterStream must not cut a connection that carries the next one).
  const busySockets = new WeakMap<Socket, number>();
  const view: SimView = {
    options: resolved,
    get running() {
      return scheduler.running;
    },
    get waiting() {
      return scheduler.waiting;
    },
    get liveTokens() {
      let total = 0;
      for (const job of running) total += job.liveTokens;
      return total;
    },
    slots() {
      const bySlot = new Map<number, Job>();
      for (const job of running) bySlot.set(job.slotId, job);
      const slots: SlotView[] = [];
      for (let id = 0; id < scheduler.capacity; id++) {
        const job = bySlot.get(id);
        const decoded = job?.generatedSoFar() ?? 0;
        slots.push({
          id,
          busy: job !== undefined,
          taskId: job?.taskId ?? -1,
          promptTokens: job?.promptTokens ?? 0,
          cachedTokens: job?.cachedTokens ?? 0,
          decoded,
          remaining: job !== undefined ? job.totalTokens - decoded : -1,
          stream: job?.streaming ?? false,
        });
      }
      return slots;
    },
  };

  const context: InferenceContext = {
    options: resolved,
    flavor,
    scheduler,
    metrics,
    counters,
    running,
    view,
    cache: new PrefixCache(),
    nextTaskId: () => taskCounter++,
    socketBusy: (socket) => busySockets.get(socket) ?? 0,
    failRandom: () => failRandom(),
    recordRequest: (request) => {
      lastRequest = request;
    },
  };

  const baseHeaders: OutgoingHttpHeaders = { ...flavor.baseHeaders };
  const headersFor = (request: IncomingMessage): OutgoingHttpHeaders => {
    const requestId = request.headers['x-request-id'];
    if (flavor.echoRequestId && typeof requestId === 'string') return { ...baseHeaders, 'x-request-id': requestId };
    return baseHeaders;
  };

  const handle = (request: IncomingMessage, response: ServerResponse): void => {
    const socket = request.socket;
    busySockets.set(socket, (busySockets.get(socket) ?? 0) + 1);
    response.once('close', () => busySockets.set(socket, (busySockets.get(socket) ?? 1) - 1));
    const url = request.url ?? '/';
    const queryAt = url.indexOf('?');
    const path = queryAt < 0 ? url : url.slice(0, queryAt);
    const query = queryAt < 0 ? '' : url.slice(queryAt + 1);
    const route = flavor.route(request.method ?? 'GET', path);
    const inference = isInferenceRoute(route);
    if (loading) {
      // vLLM is not listening while it loads; llama-server answers every path with 503.
      if (flavor.loadingResetsConnections) {
        request.socket.resetAndDestroy();
        return;
      }
      if (inference) {
        counters.requests++;
        counters.failed++;
      }
      sendReply(context, response, flavor.loading(), baseHeaders);
      return;
    }
    const headers = headersFor(request);
    if (inference) counters.requests++;
    if (resolved.apiKey !== undefined && flavor.requiresAuth(path) && !flavor.authorized(request.headers, resolved.apiKey)) {
      if (inference) counters.failed++;
      sendReply(context, response, flavor.unauthorized(), headers);
      return;
    }
    switch (route) {
      case 'chat':
      case 'completions':
      case 'embeddings':
      case 'responses':
      case 'messages':
      case 'count-tokens':
      case 'rerank':
        handleInference(context, route, path, request, response, headers);
        return;
      case 'models':
        sendReply(context, response, { status: 200, body: flavor.renderModels(resolved) }, headers);
        return;
      case 'health':
        sendReply(context, response, flavor.health(view), headers);
        return;
      case 'metrics':
        sendReply(context, response, flavor.renderMetrics(metrics, view), headers);
        return;
      case 'extra':
        sendReply(context, response, flavor.extra(path, query, view) ?? flavor.notFound(), headers);
        return;
      case 'method-not-allowed':
        sendReply(context, response, flavor.methodNotAllowed(), headers);
        return;
      case 'not-found':
        sendReply(context, response, flavor.notFound(), headers);
        return;
    }
  };

  const server = createServer(handle);
  server.on('connection', (socket: Socket) => {
    if (loading && flavor.loadingResetsConnections) {
      socket.resetAndDestroy();
      return;
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // A client that resets mid-request makes the parser emit clientError; drop the socket quietly.
  server.on('clientError', (_error, socket) => socket.destroy());

  const setLoading = (value: boolean): void => {
    if (loadingTimer !== undefined) clearTimeout(loadingTimer);
    loadingTimer = undefined;
    loading = value;
    // A vLLM that (re)starts drops every connection it had.
    if (value && flavor.loadingResetsConnections) for (const socket of sockets) socket.destroy();
  };
  const loadFor = (ms: number): void => {
    if (ms <= 0) {
      setLoading(false);
      return;
    }
    setLoading(true);
    loadingTimer = setTimeout(() => setLoading(false), ms);
    loadingTimer.unref();
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(resolved.port, resolved.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : resolved.port;
  resolved.port = port;
  publicView(resolved, publicOptions);
  if (resolved.loadingMs > 0) loadFor(resolved.loadingMs);

  let closing: Promise<void> | undefined;

  return {
    url: `http://${urlHost(resolved.host)}:${port}`,
    port,
    options: publicOptions,
    stats(): SimulatorStats {
      const stats: SimulatorStats = {
        requests: counters.requests,
        running: scheduler.running,
        waiting: scheduler.waiting,
        peakWaiting: scheduler.peakWaiting,
        peakHeld: scheduler.peakHeld,
        completed: counters.completed,
        cancelled: counters.cancelled,
        failed: counters.failed,
      };
      if (lastRequest !== undefined) stats.lastRequest = lastRequest;
      return stats;
    },
    update(partial) {
      validateOptions(partial);
      for (const key of ['flavor', 'host', 'port'] as const) {
        if (partial[key] !== undefined && partial[key] !== resolved[key]) {
          throw new Error(`simulator option ${key} cannot change on a running simulator`);
        }
      }
      if (partial.model !== undefined) resolved.model = partial.model;
      if (partial.ttftMs !== undefined) resolved.ttftMs = partial.ttftMs;
      if (partial.tokensPerSecond !== undefined) resolved.tokensPerSecond = partial.tokensPerSecond;
      if (partial.prefillTokensPerSecond !== undefined) resolved.prefillTokensPerSecond = partial.prefillTokensPerSecond;
      if (partial.batchSlowdown !== undefined) resolved.batchSlowdown = partial.batchSlowdown;
      if (partial.maxModelLen !== undefined) resolved.maxModelLen = partial.maxModelLen;
      if (partial.failRate !== undefined) resolved.failRate = partial.failRate;
      if (partial.failMode !== undefined) resolved.failMode = partial.failMode;
      if (partial.reasoning !== undefined) resolved.reasoning = partial.reasoning;
      if (partial.embeddingDim !== undefined) resolved.embeddingDim = partial.embeddingDim;
      if ('apiKey' in partial) resolved.apiKey = partial.apiKey === '' ? undefined : partial.apiKey;
      if (partial.defaultMaxTokens !== undefined) resolved.defaultMaxTokens = partial.defaultMaxTokens;
      if (partial.metrics !== undefined) resolved.metrics = partial.metrics;
      if (partial.kvCacheTokens !== undefined) resolved.kvCacheTokens = partial.kvCacheTokens;
      if (partial.reranking !== undefined) resolved.reranking = partial.reranking;
      if (partial.seed !== undefined) {
        resolved.seed = partial.seed;
        failRandom = createRng(partial.seed);
      }
      if (partial.maxConcurrency !== undefined) {
        resolved.maxConcurrency = partial.maxConcurrency;
        scheduler.resize(partial.maxConcurrency);
      }
      if (partial.loadingMs !== undefined) {
        resolved.loadingMs = partial.loadingMs;
        loadFor(partial.loadingMs);
      }
      publicView(resolved, publicOptions);
    },
    setLoading,
    close() {
      closing ??= new Promise<void>((resolve) => {
        if (loadingTimer !== undefined) clearTimeout(loadingTimer);
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}

export { defaultConcurrency };
