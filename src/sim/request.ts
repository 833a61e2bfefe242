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

interface Common {
  model: string | undefined;
  seed: number | undefined;
}

export interface ChatFields extends Common {
  endpoint: 'chat';
  stream: boolean;
  streamOptions: unknown;
  maxTokens: number | undefined;
  messages: readonly unknown[];
  tools: ToolSpec[];
  toolChoice: ToolChoice;
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

export type InferenceFields = ChatFields | CompletionFields | EmbeddingFields;

type Body = Record<string, unknown>;

function isRecord(value: unknown): value is Body {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isTokenArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === 'number');
}

/** A scalar of the wrong type: vLLM (pydantic) rejects it, llama.cpp logs and uses the default. */
function scalar<T>(
  body: Body,
  key: string,
  check: (value: unknown) => value is T,
  expected: string,
  flavor: Flavor,
): T | undefined | Reply {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (check(value)) return value;
  if (flavor.lenientScalars) return undefined;
  return flavor.invalidField(key, `Input should be ${expected}`, value);
}

const isBoolean = (value: unknown): value is boolean => typeof value === 'boolean';
const isInteger = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value);
const isString = (value: unknown): value is string => typeof value === 'string';

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

function parseTools(body: Body, flavor: Flavor): ToolSpec[] | Reply {
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

function parseToolChoice(body: Body, tools: ToolSpec[], flavor: Flavor): ToolChoice | Reply {
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
  const common = {
    model,
    seed,
    stream: stream ?? false,
    streamOptions: body.stream_options,
    maxTokens: maxCompletion ?? maxTokensField,
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
  return { endpoint: 'chat', ...common, messages: body.messages, tools, toolChoice };
}

