// Turns a parsed JSON body into the few fields the simulator acts on, rejecting
// what the runtime would reject with the flavour's own error shape. Unknown
// fields are ignored, as both runtimes ignore most of them.

import type { Flavor, Reply, Route } from './flavor.ts';

export type PromptInput = string | readonly number[];

export interface ToolSpec {
  name: string;
  parameters: unknown;
}

export type ToolChoice = 'none' | 'auto' | 'required' | { name: string };

/** Structured output asked for: a JSON schema, or any JSON object when `schema` is undefined. */
export interface JsonFormat {
  schema: unknown;
}

interface Common {
  model: string | undefined;
  seed: number | undefined;
  /** vLLM / SGLang `cache_salt`: prefix-cache blocks are shared only between requests with the same salt. */
  cacheSalt?: string | undefined;
  /** llama.cpp `cache_prompt` (default true): false computes the whole prompt again, reusing nothing. */
  cachePrompt?: boolean | undefined;
  /**
   * Simulator only (`sim_output_tokens`, ignored by real runtimes, unseen by the gateway): the model stops on its
   * own after this many tokens (finish `stop`), as real answers end before max_tokens. Chat completions only.
   */
  naturalLength?: number | undefined;
}

/**
 * Reads the prefix-cache controls the runtimes take: vLLM and SGLang refuse an empty or non-string
 * `cache_salt`; llama.cpp ignores it and reads `cache_prompt` instead.
 */
export function parseCacheControls(body: Body, flavor: Flavor): Pick<Common, 'cacheSalt' | 'cachePrompt'> | Reply {
  if (flavor.name === 'llamacpp') {
    const cachePrompt = scalar(body, 'cache_prompt', isBoolean, 'a valid boolean', flavor);
    if (isReply(cachePrompt)) return cachePrompt;
    return { cachePrompt };
  }
  const salt = body.cache_salt;
  if (salt === undefined || salt === null) return {};
  if (typeof salt !== 'string' || salt === '') return flavor.invalidField('cache_salt', 'Parameter cache_salt must be a non-empty string if provided.', salt);
  return { cacheSalt: salt };
}

/** Chat completions, and the Responses / Messages surfaces once converted to chat (as both runtimes do). */
export interface ChatFields extends Common {
  endpoint: 'chat' | 'responses' | 'messages';
  stream: boolean;
  streamOptions: unknown;
  maxTokens: number | undefined;
  messages: readonly unknown[];
  tools: ToolSpec[];
  toolChoice: ToolChoice;
  /** Choices to generate (`n`), 1 unless asked. */
  n: number;
  /** Stop sequences; undefined when none. */
  stop: readonly string[] | undefined;
  /** Alternatives per token when `logprobs` is on (0 = the token alone); undefined = off. */
  logprobs: number | undefined;
  /** `response_format` json_object / json_schema; undefined = free text. */
  json: JsonFormat | undefined;
  /** The original body of a Responses / Messages request (answers echo parts of it). */
  request?: Body;
}

export interface CompletionFields extends Common {
  endpoint: 'completions';
  stream: boolean;
  streamOptions: unknown;
  maxTokens: number | undefined;
  prompts: PromptInput[];
}

export interface EmbeddingFields extends Common {
  endpoint: 'embeddings';
  inputs: PromptInput[];
  base64: boolean;
}

/** `/v1/messages/count_tokens` and llama.cpp's `/v1/responses/input_tokens`: the prompt of a converted request. */
export interface CountTokensFields {
  endpoint: 'count-tokens';
  surface: 'responses' | 'messages';
  model: string | undefined;
  chat: ChatFields;
}

export interface RerankFields extends Common {
  endpoint: 'rerank';
  query: string;
  documents: string[];
  /** Results to keep; undefined = all. */
  topN: number | undefined;
  /** llama.cpp's TEI-style request (`texts`): a bare array of `{index, score, text?}`. */
  tei: boolean;
  returnText: boolean;
}

export type InferenceFields = ChatFields | CompletionFields | EmbeddingFields | CountTokensFields | RerankFields;

export type Body = Record<string, unknown>;

export function isRecord(value: unknown): value is Body {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isTokenArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === 'number');
}

/** A scalar of the wrong type: vLLM (pydantic) rejects it, llama.cpp logs and uses the default. */
export function scalar<T>(body: Body, key: string, check: (value: unknown) => value is T, expected: string, flavor: Flavor): T | undefined | Reply {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (check(value)) return value;
  if (flavor.lenientScalars) return undefined;
  return flavor.invalidField(key, `Input should be ${expected}`, value);
}

export const isBoolean = (value: unknown): value is boolean => typeof value === 'boolean';
export const isInteger = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value);
export const isString = (value: unknown): value is string => typeof value === 'string';

/** Distinguishes a flavour's error reply from parsed values (never a plain request field). */
export function isReply(value: unknown): value is Reply {
  return isRecord(value) && typeof value.status === 'number' && typeof value.body === 'string';
}

/** Prompt or input: a string, strings, token ids, or lists of token ids. */
function promptList(value: unknown): PromptInput[] | undefined {
  if (typeof value === 'string') return [value];
  if (isTokenArray(value)) return [value];
  if (Array.isArray(value) && value.length > 0) {
    const list: PromptInput[] = [];
    for (const item of value) {
      if (typeof item === 'string') list.push(item);
      else if (isTokenArray(item)) list.push(item);
      else return undefined;
    }
    return list;
  }
  return undefined;
}

export function parseTools(body: Body, flavor: Flavor): ToolSpec[] | Reply {
  const raw = body.tools;
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) return flavor.invalidField('tools', 'Input should be a valid list', raw);
  const tools: ToolSpec[] = [];
  for (const entry of raw) {
    const fn = isRecord(entry) ? entry.function : undefined;
    if (!isRecord(fn) || typeof fn.name !== 'string') {
      return flavor.invalidField('tools', 'each tool needs function.name', entry);
    }
    tools.push({ name: fn.name, parameters: fn.parameters });
  }
  return tools;
}

export function parseToolChoice(body: Body, tools: ToolSpec[], flavor: Flavor): ToolChoice | Reply {
  const raw = body.tool_choice;
  // Both runtimes default to "auto" when tools are given (vLLM's model validator does so explicitly).
  if (raw === undefined || raw === null) return tools.length > 0 ? 'auto' : 'none';
  if (raw === 'none' || raw === 'auto' || raw === 'required') return raw;
  const fn = isRecord(raw) ? raw.function : undefined;
  if (isRecord(fn) && typeof fn.name === 'string') {
    const name = fn.name;
    if (!tools.some((tool) => tool.name === name)) {
      return flavor.error('invalid', `Tool '${name}' has not been passed in \`tools\`.`, 'tool_choice');
    }
    return { name };
  }
  return flavor.invalidField('tool_choice', "Input should be 'none', 'auto', 'required' or a named tool", raw);
}

/** `stop`: a string or a list of strings (empty strings are dropped, as both runtimes do). */
export function parseStop(value: unknown, field: string, flavor: Flavor): readonly string[] | undefined | Reply {
  if (value === undefined || value === null) return undefined;
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || !list.every((item) => typeof item === 'string')) {
    return flavor.invalidField(field, 'Input should be a valid string or list of strings', value);
  }
  const stops = list.filter((item) => item !== '');
  return stops.length > 0 ? stops : undefined;
}

/** `response_format` of chat completions. */
function parseResponseFormat(value: unknown, flavor: Flavor): JsonFormat | undefined | Reply {
  if (value === undefined || value === null) return undefined;
  const type = isRecord(value) ? value.type : undefined;
  if (type === 'text') return undefined;
  if (type === 'json_object') return { schema: undefined };
  if (type === 'json_schema' && isRecord(value)) {
    const spec = value.json_schema;
    return { schema: isRecord(spec) ? spec.schema : undefined };
  }
  return flavor.invalidField('response_format', "Input should be 'text', 'json_object' or 'json_schema'", value);
}

/** `logprobs` + `top_logprobs`, with each runtime's rule for a top_logprobs without logprobs. */
function parseLogprobs(body: Body, flavor: Flavor): number | undefined | Reply {
  const top = body.top_logprobs;
  const on = body.logprobs === true;
  if (!on) {
    if (top === undefined || top === null) return undefined;
    return flavor.lenientScalars
      ? flavor.error('invalid', 'top_logprobs requires logprobs to be set to true')
      : flavor.invalidField('top_logprobs', 'Value error, when using `top_logprobs`, `logprobs` must be set to true.', top);
  }
  if (top === undefined || top === null) return flavor.lenientScalars ? 20 : 0;
  if (!isInteger(top) || top < 0 || top > 20) {
    return flavor.invalidField('top_logprobs', 'Input should be an integer between 0 and 20', top);
  }
  return top;
}

/** `n`: how many choices; both runtimes cap it far above what a simulator needs. */
function parseChoices(body: Body, flavor: Flavor): number | Reply {
  const value = body.n;
  if (value === undefined || value === null) return 1;
  if (isInteger(value) && value >= 1 && value <= 128) return value;
  if (flavor.lenientScalars && !isInteger(value)) return 1;
  return flavor.invalidField('n', 'Input should be an integer between 1 and 128', value);
}

const NO_OPTIONS: Pick<ChatFields, 'n' | 'stop' | 'logprobs' | 'json'> = Object.freeze({ n: 1, stop: undefined, logprobs: undefined, json: undefined });

/** The chat options beyond messages and tools. */
export function parseChatOptions(body: Body, flavor: Flavor): Pick<ChatFields, 'n' | 'stop' | 'logprobs' | 'json'> | Reply {
  // The plain chat request sets none of them: no work beyond five property reads.
  if (body.n === undefined && body.stop === undefined && body.logprobs === undefined && body.top_logprobs === undefined && body.response_format === undefined) {
    return NO_OPTIONS;
  }
  const n = parseChoices(body, flavor);
  if (isReply(n)) return n;
  const stop = parseStop(body.stop, 'stop', flavor);
  if (isReply(stop)) return stop;
  const logprobs = parseLogprobs(body, flavor);
  if (isReply(logprobs)) return logprobs;
  const json = parseResponseFormat(body.response_format, flavor);
  if (isReply(json)) return json;
  return { n, stop, logprobs, json };
}

/** Parses the body of an inference route; returns the flavour's error reply for what it rejects. */
export function parseInference(route: Route, body: unknown, flavor: Flavor): InferenceFields | Reply {
  if (!isRecord(body)) return flavor.invalidField('body', 'Input should be a valid dictionary', body);
  const model = scalar(body, 'model', isString, 'a valid string', flavor);
  if (isReply(model)) return model;
  const seed = scalar(body, 'seed', isInteger, 'a valid integer', flavor);
  if (isReply(seed)) return seed;

  if (route === 'embeddings') {
    // llama-server also takes its native "content" field here.
    const raw = body.input ?? (flavor.name === 'llamacpp' ? body.content : undefined);
    if (raw === undefined || raw === null) return flavor.missingField('input', route, body);
    const inputs = promptList(raw);
    if (inputs === undefined) return flavor.invalidField('input', 'Input should be a string or a list', raw);
    const format = body.encoding_format;
    if (format !== undefined && format !== null && format !== 'float' && format !== 'base64') {
      return flavor.invalidField('encoding_format', "Input should be 'float' or 'base64'", format);
    }
    return { endpoint: 'embeddings', model, seed, inputs, base64: format === 'base64' };
  }

  const stream = scalar(body, 'stream', isBoolean, 'a valid boolean', flavor);
  if (isReply(stream)) return stream;
  const maxCompletion = scalar(body, 'max_completion_tokens', isInteger, 'a valid integer', flavor);
  if (isReply(maxCompletion)) return maxCompletion;
  const maxTokensField = scalar(body, 'max_tokens', isInteger, 'a valid integer', flavor);
  if (isReply(maxTokensField)) return maxTokensField;
  const cacheControls = parseCacheControls(body, flavor);
  if (isReply(cacheControls)) return cacheControls;
  const common = {
    model,
    seed,
    ...cacheControls,
    stream: stream ?? false,
    streamOptions: body.stream_options,
    maxTokens: maxCompletion ?? maxTokensField,
    naturalLength: typeof body.sim_output_tokens === 'number' && body.sim_output_tokens >= 1 ? Math.floor(body.sim_output_tokens) : undefined,
  };

  if (route === 'completions') {
    if (body.prompt === undefined || body.prompt === null) return flavor.missingField('prompt', route, body);
    const prompts = promptList(body.prompt);
    if (prompts === undefined) return flavor.invalidField('prompt', 'Input should be a string or a list', body.prompt);
    return { endpoint: 'completions', ...common, prompts };
  }

  if (body.messages === undefined) return flavor.missingField('messages', route, body);
  if (!Array.isArray(body.messages)) return flavor.invalidField('messages', 'Input should be a valid list', body.messages);
  const tools = parseTools(body, flavor);
  if (isReply(tools)) return tools;
  const toolChoice = parseToolChoice(body, tools, flavor);
  if (isReply(toolChoice)) return toolChoice;
  const options = parseChatOptions(body, flavor);
  if (isReply(options)) return options;
  if (flavor.name === 'llamacpp' && options.logprobs !== undefined && common.stream && tools.length > 0) {
    return flavor.error('invalid', 'logprobs is not supported with tools + stream');
  }
  return {
    endpoint: 'chat',
    ...common,
    messages: body.messages,
    tools,
    toolChoice,
    n: options.n,
    stop: options.stop,
    logprobs: options.logprobs,
    json: options.json,
  };
}
