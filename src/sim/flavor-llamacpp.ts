// llama.cpp's llama-server, as read in tools/server/ (server-http.cpp, server-context.cpp,
// server-task.cpp, server-common.cpp) and common/chat.cpp, and checked against the
// responses recorded from a real server in test/fixtures/llamacpp/. JSON keys keep the
// order nlohmann::ordered_json gives them; the model field is always the server's own.
// The chat and text completion bodies and stream chunks are in completions-llamacpp.ts.

import { BUILD_INFO, chatBody, chatTick, completionBody, completionTick } from './completions-llamacpp.ts';
import type { ErrorKind, Flavor, Reply, Route, SimView } from './flavor.ts';
import type { IdSource } from './generate.ts';
import { renderLlamacppMetrics } from './metrics-text.ts';
import type { ResolvedOptions } from './options.ts';
import { SSE_DONE } from './sse.ts';
import { createLlamacppSurfaces } from './surfaces-llamacpp.ts';

const FTYPE = 'Q4_K - Medium';
// The recorded release guards /v1/models too; only health stays open without the key.
const PUBLIC_PATHS = new Set(['/health', '/v1/health', '/']);

const ROUTES = new Map<string, Partial<Record<string, Route>>>([
  ['/v1/chat/completions', { POST: 'chat' }],
  ['/chat/completions', { POST: 'chat' }],
  ['/v1/completions', { POST: 'completions' }],
  ['/v1/embeddings', { POST: 'embeddings' }],
  ['/v1/models', { GET: 'models' }],
  ['/models', { GET: 'models' }],
  ['/health', { GET: 'health' }],
  ['/v1/health', { GET: 'health' }],
  ['/metrics', { GET: 'metrics' }],
  ['/slots', { GET: 'extra' }],
  ['/props', { GET: 'extra' }],
  ['/v1/responses', { POST: 'responses' }],
  ['/responses', { POST: 'responses' }],
  ['/v1/messages', { POST: 'messages' }],
  ['/v1/messages/count_tokens', { POST: 'count-tokens' }],
  ['/v1/responses/input_tokens', { POST: 'count-tokens' }],
  ['/responses/input_tokens', { POST: 'count-tokens' }],
  ['/rerank', { POST: 'rerank' }],
  ['/reranking', { POST: 'rerank' }],
  ['/v1/rerank', { POST: 'rerank' }],
  ['/v1/reranking', { POST: 'rerank' }],
]);

// format_error_response(): one type string per status.
const ERROR_TYPES: Record<ErrorKind, [number, string]> = {
  invalid: [400, 'invalid_request_error'],
  context: [400, 'exceed_context_size_error'],
  not_found: [404, 'not_found_error'],
  server: [500, 'server_error'],
  unavailable: [503, 'unavailable_error'],
  // llama-server never answers 429 (it defers without limit); injected 429s borrow the closest type.
  rate_limit: [429, 'unavailable_error'],
  not_supported: [501, 'not_supported_error'],
};

export function createLlamacppFlavor(options: ResolvedOptions, ids: IdSource): Flavor {
  const error = (kind: ErrorKind, message: string, extra?: Record<string, number>): Reply => {
    const [code, type] = ERROR_TYPES[kind];
    return { status: code, body: JSON.stringify({ error: { code, message, type, ...extra } }) };
  };

  // An idle slot shows four fields; a busy one adds its task, prompt and progress.
  const slotsBody = (view: SimView): unknown[] =>
    view.slots().map((slot) => {
      const base = { id: slot.id, n_ctx: view.options.maxModelLen, speculative: false, is_processing: slot.busy };
      if (!slot.busy) return base;
      return {
        ...base,
        id_task: slot.taskId,
        n_prompt_tokens: slot.promptTokens,
        n_prompt_tokens_processed: slot.promptTokens - slot.cachedTokens,
        n_prompt_tokens_cache: slot.cachedTokens,
        params: { seed: view.options.seed, max_tokens: slot.decoded + slot.remaining, n_predict: slot.decoded + slot.remaining, stream: slot.stream },
        next_token: [{ has_next_token: true, has_new_line: false, n_remain: slot.remaining, n_decoded: slot.decoded }],
      };
    });

  return {
    name: 'llamacpp',
    jsonType: 'application/json; charset=utf-8',
    sseType: 'text/event-stream',
    baseHeaders: { server: 'llama.cpp', 'access-control-allow-origin': '' },
    errorHeaders: { connection: 'close' },
    headersBeforeFirstToken: false,
    echoRequestId: false,
    cacheBlockTokens: 1,
    closesAfterStream: true,
    loadingResetsConnections: false,
    lenientScalars: true,

    // cpp-httplib answers 404 for a known path with another method too.
    route: (method, path) => ROUTES.get(path)?.[method] ?? 'not-found',
    requiresAuth: (path) => !PUBLIC_PATHS.has(path),
    authorized(headers, apiKey) {
      let value = headers.authorization;
      if (typeof value !== 'string' || value === '') value = headers['x-api-key'];
      if (typeof value !== 'string') return false;
      return (value.startsWith('Bearer ') ? value.slice(7) : value) === apiKey;
    },

    error: (kind, message) => error(kind, message),
    unauthorized: () => ({
      status: 401,
      body: '{"error":{"message":"Invalid API Key","type":"authentication_error","code":401}}',
    }),
    notFound: () => ({ status: 404, body: '{"error":{"message":"File Not Found","type":"not_found_error","code":404}}' }),
    methodNotAllowed: () => ({ status: 404, body: '{"error":{"message":"File Not Found","type":"not_found_error","code":404}}' }),
    loading: () => ({ status: 503, body: '{"error":{"message":"Loading model","type":"unavailable_error","code":503}}' }),
    // json::parse throws a nlohmann exception, which the route wrapper maps to a 500.
    malformedJson(text, parseError) {
      const position = /position (\d+)/.exec(parseError)?.[1];
      const truncated = position === undefined && /end of (JSON )?input/i.test(parseError);
      const column = truncated ? text.length + 1 : Number(position ?? 0) + 1;
      const reason = truncated ? "unexpected end of input; expected '[', '{', or a literal" : 'invalid literal';
      return error('server', `[json.exception.parse_error.101] parse error at line 1, column ${column}: syntax error while parsing value - ${reason}`);
    },
    missingField(field) {
      if (field === 'messages') return error('invalid', "'messages' is required");
      if (field === 'prompt') return error('invalid', "[json.exception.out_of_range.403] key 'prompt' not found");
      return error('invalid', '"input" or "content" must be provided');
    },
    invalidField(field, detail) {
      if (field === 'encoding_format') return error('invalid', 'The format to return the embeddings in. Can be either float or base64');
      if (field === 'messages') return error('invalid', "Expected 'messages' to be an array");
      return error('invalid', `Invalid '${field}': ${detail}`);
    },
    injectedFailure: (status) =>
      status === 429 ? error('rate_limit', 'Simulated overload (switchyard sim failRate)') : error('server', 'Simulated failure (switchyard sim failRate)'),

    checkModel: () => undefined,
    // -1 (and anything below 1) means "until the model stops or the context is full".
    maxTokens: (value) => (value === undefined || value < 1 ? undefined : value),
    checkContext(promptTokens, maxTokens, opts) {
      const nCtx = opts.maxModelLen;
      if (promptTokens >= nCtx) {
        const message = `request (${promptTokens} tokens) exceeds the available context size (${nCtx} tokens), try increasing it`;
        const reply = error('context', message, { n_prompt_tokens: promptTokens, n_ctx: nCtx });
        return { error: reply, completionTokens: 0, finishReason: 'length' };
      }
      // Without context shift, generation stops once the context is full (prompt + completion = n_ctx,
      // fixture chat-completion-max-tokens-past-context); it is never an error.
      const room = Math.max(1, nCtx - promptTokens);
      const wanted = maxTokens ?? opts.defaultMaxTokens;
      if (wanted > room) return { completionTokens: room, finishReason: 'length' };
      return { completionTokens: wanted, finishReason: maxTokens === undefined ? 'stop' : 'length' };
    },
    checkEmbeddingContext(promptTokens, opts) {
      if (promptTokens <= opts.maxModelLen) return undefined;
      const message = `input (${promptTokens} tokens) is larger than the max context size (${opts.maxModelLen} tokens). skipping`;
      return error('context', message, { n_prompt_tokens: promptTokens, n_ctx: opts.maxModelLen });
    },
    includeUsage: (streamOptions) => typeof streamOptions === 'object' && streamOptions !== null && (streamOptions as Record<string, unknown>).include_usage === true,
    toolFinishReason: () => 'tool_calls',
    responseModel: (_requested, opts) => opts.model,
    completionId: () => `chatcmpl-${ids.alnum()}`,
    toolCallId: () => ids.alnum(),

    renderBody: (plan, timing) => (plan.kind === 'chat' ? chatBody(plan, timing) : completionBody(plan, timing)),
    renderTick: (plan, choice, pieceIndex, timing) => (plan.kind === 'chat' ? chatTick(plan, choice, pieceIndex, timing) : completionTick(plan, choice, pieceIndex, timing)),
    // Usage chunks, when asked for, follow each choice's finish chunk (chatTick).
    renderEnd: () => SSE_DONE,
    renderEmbeddings(requestedModel, _id, embeddings, promptTokens) {
      // The embeddings answer echoes the request's model, unlike completions.
      return JSON.stringify({
        model: requestedModel ?? options.model,
        object: 'list',
        usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
        data: embeddings.map((embedding, index) => ({ embedding, index, object: 'embedding' })),
      });
    },
    renderModels(opts) {
      return JSON.stringify({
        models: [
          {
            name: opts.model,
            model: opts.model,
            modified_at: '',
            size: '',
            digest: '',
            type: 'model',
            description: '',
            tags: [''],
            capabilities: ['completion'],
            parameters: '',
            details: { parent_model: '', format: 'gguf', family: '', families: [''], parameter_size: '', quantization_level: '' },
          },
        ],
        object: 'list',
        data: [
          {
            id: opts.model,
            aliases: [opts.model],
            tags: [],
            object: 'model',
            created: Math.floor(Date.now() / 1000),
            owned_by: 'llamacpp',
            meta: {
              vocab_type: 2,
              n_vocab: 151936,
              n_ctx: opts.maxModelLen,
              n_ctx_train: Math.max(opts.maxModelLen, 32768),
              n_embd: opts.embeddingDim,
              n_params: 7615616512,
              size: 4683073536,
              ftype: FTYPE,
            },
          },
        ],
      });
    },
    health: () => ({ status: 200, body: '{"status":"ok"}' }),
    extra(path, query, view) {
      if (path === '/slots') {
        if (/(^|&)fail_on_no_slot=[^&]/.test(query) && view.running >= view.options.maxConcurrency) {
          return error('unavailable', 'no slot available');
        }
        return { status: 200, body: JSON.stringify(slotsBody(view)) };
      }
      if (path === '/props') {
        return {
          status: 200,
          body: JSON.stringify({
            default_generation_settings: { params: { n_predict: -1, seed: view.options.seed }, n_ctx: view.options.maxModelLen },
            total_slots: view.options.maxConcurrency,
            model_alias: view.options.model,
            model_ftype: FTYPE,
            model_path: `/models/${view.options.model}.gguf`,
            modalities: { vision: false, video: false, audio: false },
            endpoint_slots: true,
            endpoint_props: false,
            endpoint_metrics: view.options.metrics,
            chat_template: '',
            build_info: BUILD_INFO,
            is_sleeping: false,
          }),
        };
      }
      return undefined;
    },
    renderMetrics(state, view) {
      if (!view.options.metrics) {
        return error('not_supported', 'This server does not support metrics endpoint. Start it with `--metrics`');
      }
      return { status: 200, body: renderLlamacppMetrics(state, view), contentType: 'text/plain; version=0.0.4' };
    },
    loadReport: () => undefined,
    surfaces: createLlamacppSurfaces(options, ids, (kind, message) => error(kind, message)),
  };
}
