// SGLang's OpenAI-compatible server, as read in python/sglang/srt/entrypoints/http_server.py,
// entrypoints/openai/ (protocol.py, serving_base.py, serving_chat.py, serving_completions.py),
// managers/tokenizer_manager.py (context checks) and the scheduler's metrics collector.
// Pydantic's model_dump keeps None fields, so answers and chunks carry the unset fields as null
// (a choice drops hidden_states/token ids, a response its sglext, when unset). Stream chunks are
// model_dump_json (compact); a stream's error event is json.dumps (", " and ": " separators).
// While the model loads the HTTP server is not up yet, so connections are refused.

import type { ErrorKind, Flavor, Piece, Plan, PlanChoice, Reply, Route, SimView, Timing } from './flavor.ts';
import { type IdSource, tokenLogprobs, utf8Bytes } from './generate.ts';
import type { MetricsState } from './metrics-state.ts';
import { CANCELLED_METRIC, pythonFloat } from './metrics-text.ts';
import type { ResolvedOptions } from './options.ts';
import { SSE_DONE, sseEvent } from './sse.ts';
import { choiceText } from './surface-text.ts';

// The EOS id a natural stop reports as matched_stop (Qwen's <|im_end|>).
const EOS_TOKEN_ID = 151645;

const ROUTES = new Map<string, Partial<Record<string, Route>>>([
  ['/v1/chat/completions', { POST: 'chat' }],
  ['/v1/completions', { POST: 'completions' }],
  ['/v1/embeddings', { POST: 'embeddings' }],
  ['/v1/models', { GET: 'models' }],
  ['/health', { GET: 'health' }],
  ['/health_generate', { GET: 'health' }],
  ['/metrics', { GET: 'metrics' }],
  ['/get_model_info', { GET: 'extra' }],
  ['/model_info', { GET: 'extra' }],
  ['/ping', { GET: 'extra' }],
]);

// err_type of create_error_response(); request validation uses the HTTP status phrase.
const ERROR_TYPES: Record<ErrorKind, [number, string]> = {
  invalid: [400, 'BadRequestError'],
  context: [400, 'BadRequestError'],
  not_found: [404, 'NotFoundError'],
  server: [500, 'InternalServerError'],
  unavailable: [503, 'ServiceUnavailableError'],
  rate_limit: [429, 'TooManyRequestsError'],
  not_supported: [501, 'NotImplementedError'],
};

/** Python repr as pydantic prints it in validation errors. */
function pythonRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return `'${value.length > 100 ? `${value.slice(0, 100)}...` : value}'`;
  if (Array.isArray(value)) return `[${value.length} items]`;
  return `{${Object.keys(value)
    .map((key) => `'${key}': ...`)
    .join(', ')}}`;
}

/** FastAPI's RequestValidationError as SGLang's handler renders it: status 400, the phrase as type, flat. */
function validationError(type: string, loc: string, message: string, input: unknown): Reply {
  const error = `{'type': '${type}', 'loc': ${loc}, 'msg': '${message}', 'input': ${pythonRepr(input)}}`;
  const body = JSON.stringify({ object: 'error', message: `1 validation error:\n  ${error} [${error}]`, type: 'Bad Request', param: null, code: 400 });
  return { status: 400, body };
}

function usage(prompt: number, completion: number, reasoning: number): Record<string, unknown> {
  return { prompt_tokens: prompt, total_tokens: prompt + completion, completion_tokens: completion, prompt_tokens_details: null, reasoning_tokens: reasoning };
}

function emptyDelta(): Record<string, unknown> {
  return { role: null, content: null, reasoning_content: null, tool_calls: null };
}

/** DeltaMessage of one token (every field present, unset ones null). */
function pieceDelta(piece: Piece): Record<string, unknown> {
  const delta = emptyDelta();
  switch (piece.kind) {
    case 'content':
      delta.content = piece.text;
      break;
    case 'reasoning':
      delta.reasoning_content = piece.text;
      break;
    case 'tool-header':
      delta.tool_calls = [{ id: piece.id, index: piece.toolIndex, type: 'function', function: { name: piece.name, arguments: '' } }];
      break;
    case 'tool-args':
      delta.tool_calls = [{ id: null, index: piece.toolIndex, type: 'function', function: { name: null, arguments: piece.text } }];
      break;
  }
  return delta;
}

/** The stop string that ended the choice, the EOS id for a natural stop, else null. */
function matchedStop(choice: PlanChoice): number | string | null {
  if (choice.stopSequence !== undefined) return choice.stopSequence;
  return choice.finishReason === 'stop' ? EOS_TOKEN_ID : null;
}

const VOCABULARY_SIZE = 151936;

/** ChatCompletionTokenLogprob: token, bytes, logprob and the top alternatives. */
function logprobEntry(text: string, position: number, top: number): Record<string, unknown> {
  const probs = tokenLogprobs(text, position, top, VOCABULARY_SIZE);
  return {
    token: probs.chosen.token,
    bytes: utf8Bytes(probs.chosen.token),
    logprob: probs.chosen.logprob,
    top_logprobs: probs.top.map((alternative) => ({ token: alternative.token, bytes: utf8Bytes(alternative.token), logprob: alternative.logprob })),
  };
}

/** ChoiceLogprobs of a chat choice when the request asked for them, else null. */
function pieceLogprobs(plan: Plan, piece: Piece, position: number): { content: unknown[] } | null {
  return plan.logprobs !== undefined && piece.kind !== 'tool-header' ? { content: [logprobEntry(piece.text, position, plan.logprobs)] } : null;
}

function renderSglangMetrics(state: MetricsState, view: SimView): string {
  const model = view.options.model.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  const labels = `{model_name="${model}",engine_type="unified",tp_rank="0",pp_rank="0"}`;
  const lines: string[] = [];
  const sample = (name: string, type: 'gauge' | 'counter', help: string, value: number): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name}${labels} ${pythonFloat(value)}`);
  };
  const pool = view.options.kvCacheTokens;
  const used = Math.min(view.liveTokens, pool);
  sample('sglang:num_running_reqs', 'gauge', 'The number of running requests.', view.running);
  sample('sglang:num_used_tokens', 'gauge', 'The number of used tokens.', used);
  sample('sglang:token_usage', 'gauge', 'The token usage.', Math.round((100 * used) / pool) / 100);
  sample('sglang:gen_throughput', 'gauge', 'The generation throughput (token/s).', 0);
  sample('sglang:num_queue_reqs', 'gauge', 'The number of requests in the waiting queue.', view.waiting);
  sample('sglang:cache_hit_rate', 'gauge', 'The prefix cache hit rate.', state.prefixQueries > 0 ? state.prefixHits / state.prefixQueries : 0);
  sample('sglang:max_total_num_tokens', 'gauge', 'Maximum total number of tokens in the KV cache pool.', pool);
  sample('sglang:prompt_tokens_total', 'counter', 'Number of prefill tokens processed.', state.promptTokens);
  sample('sglang:generation_tokens_total', 'counter', 'Number of generation tokens processed.', state.generationTokens);
  const finished = state.success.stop + state.success.length + state.success.abort + state.success.error;
  sample('sglang:num_requests_total', 'counter', 'Number of requests processed.', finished);
  lines.push(`# HELP ${CANCELLED_METRIC} Requests cancelled because the client went away (simulator only).`, `# TYPE ${CANCELLED_METRIC} counter`);
  lines.push(`${CANCELLED_METRIC} ${pythonFloat(state.cancelled)}`);
  return `${lines.join('\n')}\n`;
}

export function createSglangFlavor(options: ResolvedOptions, ids: IdSource): Flavor {
  // Errors found while preparing a request (tokenising, the context checks) are raised inside the stream
  // generator, after the headers went out: a streaming client gets them as an SSE event.
  const raisedInStream = new WeakSet<Reply>();

  const error = (kind: ErrorKind, message: string, param: string | null = null): Reply => {
    const [status, type] = ERROR_TYPES[kind];
    return { status, body: JSON.stringify({ object: 'error', message, type, param, code: status }) };
  };
  const contextError = (message: string): Reply => {
    const reply = error('context', message);
    raisedInStream.add(reply);
    return reply;
  };

  const chunk = (plan: Plan, choices: unknown[], usageValue: unknown = null): Record<string, unknown> => ({
    id: plan.id,
    object: plan.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
    created: plan.created,
    model: plan.model,
    choices,
    usage: usageValue,
  });

  const chatTick = (plan: Plan, choice: PlanChoice, pieceIndex: number): string => {
    const piece = choice.pieces[pieceIndex];
    let out = '';
    if (pieceIndex === 0) {
      const role = { ...emptyDelta(), role: 'assistant', content: '' };
      out += sseEvent(chunk(plan, [{ index: choice.index, delta: role, logprobs: null, finish_reason: null, matched_stop: null }]));
    }
    if (piece !== undefined) {
      out += sseEvent(chunk(plan, [{ index: choice.index, delta: pieceDelta(piece), logprobs: pieceLogprobs(plan, piece, pieceIndex), finish_reason: null, matched_stop: null }]));
    }
    // The finish reasons go out after generation, one chunk per choice with an empty delta.
    if (pieceIndex === choice.pieces.length - 1) {
      const finish = { index: choice.index, delta: emptyDelta(), logprobs: null, finish_reason: choice.finishReason, matched_stop: matchedStop(choice) };
      out += sseEvent(chunk(plan, [finish]));
    }
    return out;
  };

  const completionTick = (plan: Plan, choice: PlanChoice, pieceIndex: number): string => {
    const piece = choice.pieces[pieceIndex];
    const last = pieceIndex === choice.pieces.length - 1;
    const text = piece !== undefined && piece.kind === 'content' ? piece.text : '';
    return sseEvent(
      chunk(plan, [{ index: choice.index, text, logprobs: null, finish_reason: last ? choice.finishReason : null, matched_stop: last ? matchedStop(choice) : null }]),
    );
  };

  const chatBody = (plan: Plan): string =>
    JSON.stringify({
      id: plan.id,
      object: 'chat.completion',
      created: plan.created,
      model: plan.model,
      choices: plan.choices.map((choice) => {
        let content = '';
        let reasoning = '';
        for (const piece of choice.pieces) {
          if (piece.kind === 'content') content += piece.text;
          else if (piece.kind === 'reasoning') reasoning += piece.text;
        }
        const toolCalls =
          choice.toolCalls.length === 0
            ? null
            : choice.toolCalls.map((call, index) => ({ id: call.id, index, type: 'function', function: { name: call.name, arguments: call.arguments } }));
        const logprobs: unknown[] = [];
        choice.pieces.forEach((piece, position) => {
          if (plan.logprobs !== undefined && piece.kind !== 'tool-header') logprobs.push(logprobEntry(piece.text, position, plan.logprobs));
        });
        return {
          index: choice.index,
          message: { role: 'assistant', content: toolCalls === null ? content : content || null, reasoning_content: reasoning === '' ? null : reasoning, tool_calls: toolCalls },
          logprobs: plan.logprobs === undefined ? null : { content: logprobs },
          finish_reason: choice.finishReason,
          matched_stop: matchedStop(choice),
        };
      }),
      usage: usage(plan.promptTokens, plan.completionTokens, plan.reasoningTokens),
      metadata: null,
    });

  const completionBody = (plan: Plan): string =>
    JSON.stringify({
      id: plan.id,
      object: 'text_completion',
      created: plan.created,
      model: plan.model,
      choices: plan.choices.map((choice) => ({
        index: choice.index,
        text: choiceText(choice).content,
        logprobs: null,
        finish_reason: choice.finishReason,
        matched_stop: matchedStop(choice),
      })),
      usage: usage(plan.promptTokens, plan.completionTokens, 0),
      metadata: null,
    });

  return {
    name: 'sglang',
    jsonType: 'application/json',
    sseType: 'text/event-stream; charset=utf-8',
    baseHeaders: { server: 'uvicorn' },
    errorHeaders: {},
    headersBeforeFirstToken: true,
    echoRequestId: false,
    // The radix cache matches prefixes token by token (page size 1).
    cacheBlockTokens: 1,
    closesAfterStream: false,
    loadingResetsConnections: true,
    lenientScalars: false,

    route(method, path) {
      const methods = ROUTES.get(path);
      if (methods === undefined) return 'not-found';
      return methods[method] ?? 'method-not-allowed';
    },
    // add_api_key_middleware: everything but /health* and /metrics.
    requiresAuth: (path) => !path.startsWith('/health') && !path.startsWith('/metrics'),
    // An exact comparison with "Bearer <key>": no other scheme spelling, no X-Api-Key.
    authorized: (headers, apiKey) => headers.authorization === `Bearer ${apiKey}`,

    error,
    unauthorized: () => ({ status: 401, body: '{"error":"Unauthorized"}' }),
    notFound: () => ({ status: 404, body: '{"detail":"Not Found"}' }),
    methodNotAllowed: () => ({ status: 405, body: '{"detail":"Method Not Allowed"}' }),
    loading: () => ({ status: 503, body: '', contentType: '' }),
    malformedJson: (text) => validationError('json_invalid', "('body', 0)", 'JSON decode error', text),
    missingField: (field, _endpoint, body) => validationError('missing', `('body', '${field}')`, 'Field required', body),
    invalidField: (field, detail, input) => validationError('value_error', `('body', '${field}')`, `Value error, ${detail}`, input),
    injectedFailure: (status) =>
      status === 429
        ? error('rate_limit', 'Simulated overload (switchyard sim failRate).')
        : error('server', 'Internal server error: simulated engine failure (switchyard sim failRate).'),

    // The served model name is not checked: any `model` is answered (and echoed back).
    checkModel: () => undefined,
    maxTokens(value) {
      if (value !== undefined && value <= 0) return validationError('value_error', "('body', 'max_tokens')", 'Value error, max_tokens must be positive', value);
      return value;
    },
    checkContext(promptTokens, maxTokens, opts) {
      const limit = opts.maxModelLen;
      if (promptTokens >= limit) {
        const message = `The input (${promptTokens} tokens) is longer than the model's context length (${limit} tokens).`;
        return { error: contextError(message), completionTokens: 0, finishReason: 'length' };
      }
      if (maxTokens !== undefined) {
        if (promptTokens + maxTokens > limit) {
          const message =
            `Requested token count exceeds the model's maximum context length of ${limit} tokens. ` +
            `You requested a total of ${promptTokens + maxTokens} tokens: ${promptTokens} tokens from the input messages and ` +
            `${maxTokens} tokens for the completion. Please reduce the number of tokens in the input messages or the completion to fit within the limit.`;
          return { error: contextError(message), completionTokens: 0, finishReason: 'length' };
        }
        return { completionTokens: maxTokens, finishReason: 'length' };
      }
      // Without max_tokens the engine may use the rest of the window; the simulated model stops earlier.
      const room = limit - promptTokens;
      return room < opts.defaultMaxTokens ? { completionTokens: room, finishReason: 'length' } : { completionTokens: opts.defaultMaxTokens, finishReason: 'stop' };
    },
    checkEmbeddingContext(promptTokens, opts) {
      if (promptTokens < opts.maxModelLen) return undefined;
      return error('context', `The input (${promptTokens} tokens) is longer than the model's context length (${opts.maxModelLen} tokens).`);
    },
    // StreamOptions.include_usage defaults to False.
    includeUsage: (streamOptions) => typeof streamOptions === 'object' && streamOptions !== null && (streamOptions as Record<string, unknown>).include_usage === true,
    // A natural stop after a tool call is reported as "tool_calls", named tool choice or not.
    toolFinishReason: () => 'tool_calls',
    // Answers carry request.model as the client sent it ("default" when absent).
    responseModel: (requested) => requested ?? 'default',
    completionId: () => ids.hex(),
    toolCallId: () => `call_${ids.hex().slice(0, 24)}`,

    renderBody: (plan) => (plan.kind === 'chat' ? chatBody(plan) : completionBody(plan)),
    renderTick: (plan, choice, pieceIndex) => (plan.kind === 'chat' ? chatTick(plan, choice, pieceIndex) : completionTick(plan, choice, pieceIndex)),
    renderEnd(plan: Plan, _timing: Timing) {
      if (!plan.includeUsage) return SSE_DONE;
      return sseEvent(chunk(plan, [], usage(plan.promptTokens, plan.completionTokens, plan.kind === 'chat' ? plan.reasoningTokens : 0))) + SSE_DONE;
    },
    renderEmbeddings(requestedModel, _id, embeddings, promptTokens) {
      return JSON.stringify({
        data: embeddings.map((embedding, index) => ({ embedding, index, object: 'embedding' })),
        model: requestedModel ?? 'default',
        object: 'list',
        usage: usage(promptTokens, 0, 0),
      });
    },
    renderModels(opts) {
      return JSON.stringify({
        object: 'list',
        data: [{ id: opts.model, object: 'model', created: Math.floor(Date.now() / 1000), owned_by: 'sglang', root: opts.model, parent: null, max_model_len: opts.maxModelLen }],
      });
    },
    // Response(status_code=200): no body, no content type.
    health: () => ({ status: 200, body: '', contentType: '' }),
    extra(path) {
      if (path === '/ping') return { status: 200, body: '', contentType: '' };
      if (path === '/get_model_info' || path === '/model_info') {
        return {
          status: 200,
          body: JSON.stringify({
            model_path: options.model,
            tokenizer_path: options.model,
            is_generation: true,
            preferred_sampling_params: null,
            weight_version: 'default',
          }),
        };
      }
      return undefined;
    },
    renderMetrics(state, view) {
      // /metrics is mounted only with --enable-metrics.
      if (!view.options.metrics) return { status: 404, body: '{"detail":"Not Found"}' };
      return { status: 200, body: renderSglangMetrics(state, view), contentType: 'text/plain; version=0.0.4; charset=utf-8' };
    },
    loadReport: () => undefined,
    errorInStream(reply) {
      if (!raisedInStream.has(reply)) return undefined;
      // create_streaming_error_response(): json.dumps({"error": ErrorResponse.model_dump()}), then [DONE].
      const error = JSON.parse(reply.body) as Record<string, unknown>;
      const fields = Object.entries(error).map(([key, value]) => `${JSON.stringify(key)}: ${JSON.stringify(value)}`);
      return { status: 200, body: `data: {"error": {${fields.join(', ')}}}\n\n${SSE_DONE}`, contentType: 'text/event-stream; charset=utf-8' };
    },
  };
}
