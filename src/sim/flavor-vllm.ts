// vLLM's OpenAI-compatible server (V1 engine), as read in vllm/entrypoints/openai/
// (chat_completion/serving.py, engine/serving.py, server_utils.py, orca_metrics.py)
// and vllm/v1/metrics/loggers.py. Shapes follow pydantic's model_dump: non-streamed
// bodies carry the vLLM extension fields as null, stream chunks omit unset fields.
// The chat and text completion bodies and stream chunks are in completions-vllm.ts.

import { createVllmCompletions } from './completions-vllm.ts';
import type { ErrorKind, Flavor, Reply, Route } from './flavor.ts';
import type { IdSource } from './generate.ts';
import { pythonFloat, renderVllmMetrics } from './metrics-text.ts';
import type { ResolvedOptions } from './options.ts';
import { createVllmSurfaces } from './surfaces-vllm.ts';

const VLLM_VERSION = '0.11.2';

const ROUTES = new Map<string, Partial<Record<string, Route>>>([
  ['/v1/chat/completions', { POST: 'chat' }],
  ['/v1/completions', { POST: 'completions' }],
  ['/v1/embeddings', { POST: 'embeddings' }],
  ['/v1/models', { GET: 'models' }],
  ['/health', { GET: 'health' }],
  ['/metrics', { GET: 'metrics' }],
  ['/ping', { GET: 'extra', POST: 'extra' }],
  ['/version', { GET: 'extra' }],
  ['/load', { GET: 'extra' }],
  ['/v1/responses', { POST: 'responses' }],
  ['/v1/messages', { POST: 'messages' }],
  ['/v1/messages/count_tokens', { POST: 'count-tokens' }],
  ['/rerank', { POST: 'rerank' }],
  ['/v1/rerank', { POST: 'rerank' }],
  ['/v2/rerank', { POST: 'rerank' }],
]);

/** `GET /v1/responses/{id}`: nothing is ever stored (VLLM_ENABLE_RESPONSES_API_STORE off). */
const STORED_RESPONSE = /^\/v1\/responses\/[^/]+$/;

// Error `type` values: the exception class names vLLM puts in ErrorInfo.type, or,
// for HTTPException and request validation, the HTTP status phrase.
const ERROR_TYPES: Record<ErrorKind, [number, string]> = {
  invalid: [400, 'BadRequestError'],
  context: [400, 'BadRequestError'],
  not_found: [404, 'NotFoundError'],
  server: [500, 'InternalServerError'],
  unavailable: [503, 'Service Unavailable'],
  rate_limit: [429, 'Too Many Requests'],
  not_supported: [501, 'NotImplementedError'],
};

/** Python repr as pydantic prints it in validation messages (containers summarised, as vLLM does). */
function pythonRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return `'${value.length > 200 ? `${value.slice(0, 200)}...[truncated]` : value}'`;
  const size = Array.isArray(value) ? value.length : Object.keys(value).length;
  return `'<${Array.isArray(value) ? 'list' : 'dict'} of ${size} items>'`;
}

function validationError(type: string, field: string, message: string, input: unknown, extra = ''): Reply {
  const loc = field === 'body' ? 'body' : `body.${field}`;
  const detail = `1 validation error:\n  {'type': '${type}', 'loc': '${loc}', 'msg': '${message}', 'input': ${pythonRepr(input)}${extra}}`;
  const body = JSON.stringify({ error: { message: detail, type: 'Bad Request', param: loc, code: 400 } });
  return { status: 400, body };
}

export function createVllmFlavor(options: ResolvedOptions, ids: IdSource): Flavor {
  const completions = createVllmCompletions(options);

  const error = (kind: ErrorKind, message: string, param: string | null = null): Reply => {
    const [status, type] = ERROR_TYPES[kind];
    return { status, body: JSON.stringify({ error: { message, type, param, code: status } }) };
  };

  return {
    name: 'vllm',
    jsonType: 'application/json',
    sseType: 'text/event-stream; charset=utf-8',
    baseHeaders: { server: 'uvicorn' },
    errorHeaders: {},
    headersBeforeFirstToken: true,
    echoRequestId: true,
    cacheBlockTokens: 16,
    closesAfterStream: false,
    loadingResetsConnections: true,
    lenientScalars: false,

    route(method, path) {
      const methods = ROUTES.get(path);
      if (methods === undefined) return method === 'GET' && STORED_RESPONSE.test(path) ? 'extra' : 'not-found';
      return methods[method] ?? 'method-not-allowed';
    },
    // AuthenticationMiddleware: only paths under /v1 need the key.
    requiresAuth: (path) => path.startsWith('/v1'),
    authorized(headers, apiKey) {
      const value = headers.authorization;
      if (typeof value !== 'string') return false;
      const space = value.indexOf(' ');
      if (space < 0 || value.slice(0, space).toLowerCase() !== 'bearer') return false;
      return value.slice(space + 1) === apiKey;
    },

    error,
    unauthorized: () => ({ status: 401, body: '{"error":"Unauthorized"}' }),
    notFound: () => ({ status: 404, body: '{"detail":"Not Found"}' }),
    methodNotAllowed: () => ({ status: 405, body: '{"detail":"Method Not Allowed"}' }),
    loading: () => error('unavailable', 'Server is loading the model'),
    malformedJson: () => validationError('json_invalid', '0', 'JSON decode error', {}, ", 'ctx': {'error': 'Expecting value'}"),
    missingField(field, endpoint, body) {
      if (endpoint === 'completions') {
        return error('invalid', 'Either prompt or prompt_embeds must be provided and non-empty.');
      }
      return validationError('missing', field, 'Field required', body);
    },
    invalidField: (field, detail, input) => validationError('value_error', field, detail, input),
    injectedFailure: (status) =>
      status === 429 ? error('rate_limit', 'Simulated overload (switchyard sim failRate).') : error('server', 'Simulated engine failure (switchyard sim failRate).'),

    checkModel(requested, opts) {
      if (requested === undefined || requested === '' || requested === opts.model) return undefined;
      return error('not_found', `The model \`${requested}\` does not exist.`, 'model');
    },
    maxTokens(value) {
      if (value !== undefined && value < 1) return error('invalid', `max_tokens must be at least 1, got ${value}.`, 'max_tokens');
      return value;
    },
    checkContext(promptTokens, maxTokens, opts) {
      const limit = opts.maxModelLen;
      if (promptTokens >= limit) {
        const message =
          `This model's maximum context length is ${limit} tokens. However, your request has ` + `${promptTokens} input tokens. Please reduce the length of the input messages.`;
        return { error: error('context', message, 'input_tokens'), completionTokens: 0, finishReason: 'length' };
      }
      if (maxTokens !== undefined) {
        if (promptTokens + maxTokens > limit) {
          const message =
            `'max_tokens' or 'max_completion_tokens' is too large: ${maxTokens}. This model's maximum context ` +
            `length is ${limit} tokens and your request has ${promptTokens} input tokens ` +
            `(${maxTokens} > ${limit} - ${promptTokens}).`;
          return { error: error('context', message, 'max_tokens'), completionTokens: 0, finishReason: 'length' };
        }
        return { completionTokens: maxTokens, finishReason: 'length' };
      }
      // Without max_tokens vLLM may use the whole remaining context; the simulated model stops earlier.
      const room = limit - promptTokens;
      return room < opts.defaultMaxTokens ? { completionTokens: room, finishReason: 'length' } : { completionTokens: opts.defaultMaxTokens, finishReason: 'stop' };
    },
    checkEmbeddingContext(promptTokens, opts) {
      if (promptTokens <= opts.maxModelLen) return undefined;
      const message =
        `This model's maximum context length is ${opts.maxModelLen} tokens. However, you requested ` +
        `${promptTokens} tokens in the input for embedding generation. Please reduce the length of the input.`;
      return error('context', message, 'input_tokens');
    },
    includeUsage(streamOptions) {
      // Once stream_options is present, vLLM defaults include_usage to true.
      if (typeof streamOptions !== 'object' || streamOptions === null) return false;
      const value = (streamOptions as Record<string, unknown>).include_usage;
      return value === undefined || value === null ? true : value === true;
    },
    // "tool_calls" for auto/required, "stop" for a named tool choice, like OpenAI.
    toolFinishReason: (named) => (named ? 'stop' : 'tool_calls'),
    responseModel: (_requested, opts) => opts.model,
    completionId(kind, requestIdHeader) {
      const base = requestIdHeader ?? ids.hex();
      return kind === 'chat' ? `chatcmpl-${base}` : kind === 'completions' ? `cmpl-${base}` : `embd-${base}`;
    },
    toolCallId: () => `chatcmpl-tool-${ids.hex()}`,

    renderBody: completions.renderBody,
    renderTick: completions.renderTick,
    renderEnd: completions.renderEnd,
    renderEmbeddings(_requestedModel, id, embeddings, promptTokens) {
      return JSON.stringify({
        id,
        object: 'list',
        created: Math.floor(Date.now() / 1000),
        model: options.model,
        data: embeddings.map((embedding, index) => ({ index, object: 'embedding', embedding })),
        usage: { prompt_tokens: promptTokens, total_tokens: promptTokens, completion_tokens: 0, prompt_tokens_details: null },
      });
    },
    renderModels(opts) {
      const created = Math.floor(Date.now() / 1000);
      return JSON.stringify({
        object: 'list',
        data: [
          {
            id: opts.model,
            object: 'model',
            created,
            owned_by: 'vllm',
            root: opts.model,
            parent: null,
            max_model_len: opts.maxModelLen,
            permission: [
              {
                id: `modelperm-${ids.hex()}`,
                object: 'model_permission',
                created,
                allow_create_engine: false,
                allow_sampling: true,
                allow_logprobs: true,
                allow_search_indices: false,
                allow_view: true,
                allow_fine_tuning: false,
                organization: '*',
                group: null,
                is_blocking: false,
              },
            ],
          },
        ],
      });
    },
    // 200 with an empty body while the engine is alive.
    health: () => ({ status: 200, body: '', contentType: '' }),
    extra(path, _query, view) {
      if (path === '/ping') return { status: 200, body: '', contentType: '' };
      if (path === '/version') return { status: 200, body: JSON.stringify({ version: VLLM_VERSION }) };
      if (path === '/load') return { status: 200, body: JSON.stringify({ server_load: view.running + view.waiting }) };
      if (STORED_RESPONSE.test(path)) {
        const id = decodeURIComponent(path.slice('/v1/responses/'.length));
        const message = `Response with id '${id}' not found.`;
        return { status: 404, body: JSON.stringify({ error: { message, type: 'invalid_request_error', param: 'response_id', code: 404 } }) };
      }
      return undefined;
    },
    renderMetrics: (state, view) => ({
      status: 200,
      body: renderVllmMetrics(state, view),
      contentType: 'text/plain; version=0.0.4; charset=utf-8',
    }),
    surfaces: createVllmSurfaces(options, ids),
    loadReport(format, view) {
      const kv = Math.min(1, view.liveTokens / view.options.kvCacheTokens);
      const lower = format.toLowerCase();
      if (lower === 'text') {
        return `TEXT named_metrics.kv_cache_usage_perc=${pythonFloat(kv)}, named_metrics.num_requests_waiting=${pythonFloat(view.waiting)}`;
      }
      if (lower === 'json') {
        return `JSON {"named_metrics": {"kv_cache_usage_perc": ${pythonFloat(kv)}, "num_requests_waiting": ${pythonFloat(view.waiting)}}}`;
      }
      return undefined;
    },
  };
}
