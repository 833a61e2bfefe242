// Parses the bodies of the surfaces beyond chat completions - OpenAI Responses,
// Anthropic Messages (+ count_tokens) and rerank - the way each runtime does:
// both convert a Responses or Messages request into a chat request
// (llama.cpp: server_chat_convert_responses_to_chatcmpl / server_chat_convert_anthropic_to_oai;
// vLLM: construct_input_messages / AnthropicServingMessages), so the result is ChatFields
// that the chat planner runs unchanged. The converted messages only feed prompt counting,
// prefix caching and the "last turn is a tool result" rule, so they keep role and text.

import type { Flavor, Reply } from './flavor.ts';
import {
  type Body,
  type ChatFields,
  type CountTokensFields,
  isBoolean,
  isInteger,
  isRecord,
  isReply,
  isString,
  parseCacheControls,
  type JsonFormat,
  parseStop,
  type RerankFields,
  scalar,
  type ToolChoice,
  type ToolSpec,
} from './request.ts';

type Message = { role: string; content: string; tool_calls?: unknown };

/** An OpenAI-shaped error body with an explicit type (vLLM's create_error_response with err_type). */
function typedError(status: number, type: string, message: string, param: string | null): Reply {
  return { status, body: JSON.stringify({ error: { message, type, param, code: status } }) };
}

/** Text of a content value: a string, or parts carrying `text` (anything else counts as nothing). */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content) {
    if (isRecord(part) && typeof part.text === 'string') text += part.text;
  }
  return text;
}

function common(
  body: Body,
  flavor: Flavor,
): { model: string | undefined; seed: number | undefined; stream: boolean; cacheSalt?: string | undefined; cachePrompt?: boolean | undefined } | Reply {
  const model = scalar(body, 'model', isString, 'a valid string', flavor);
  if (isReply(model)) return model;
  const seed = scalar(body, 'seed', isInteger, 'a valid integer', flavor);
  if (isReply(seed)) return seed;
  const stream = scalar(body, 'stream', isBoolean, 'a valid boolean', flavor);
  if (isReply(stream)) return stream;
  const cacheControls = parseCacheControls(body, flavor);
  if (isReply(cacheControls)) return cacheControls;
  return { model, seed, stream: stream ?? false, ...cacheControls };
}

// ---------------------------------------------------------------- Responses

function responsesMessages(body: Body, flavor: Flavor): Message[] | Reply {
  const llama = flavor.name === 'llamacpp';
  const messages: Message[] = [];
  if (typeof body.instructions === 'string') messages.push({ role: 'system', content: body.instructions });
  const input = body.input;
  if (typeof input === 'string') {
    messages.push({ role: 'user', content: input });
    return messages;
  }
  if (!Array.isArray(input)) {
    return llama ? flavor.error('invalid', "'input' must be a string or array of objects") : flavor.invalidField('input', 'Input should be a valid string or list', input);
  }
  for (const item of input) {
    if (!isRecord(item)) return llama ? flavor.error('invalid', "Cannot determine type of 'item'") : flavor.invalidField('input', 'Input should be a valid dictionary', item);
    const type = item.type;
    if (type === 'function_call') {
      messages.push({ role: 'assistant', content: '', tool_calls: [{ name: item.name, arguments: item.arguments }] });
    } else if (type === 'function_call_output') {
      messages.push({ role: 'tool', content: typeof item.output === 'string' ? item.output : JSON.stringify(item.output ?? '') });
    } else if (type === 'reasoning') {
      messages.push({ role: 'assistant', content: contentText(item.content) });
    } else if (typeof item.role === 'string' && (type === undefined || type === 'message')) {
      messages.push({ role: item.role === 'developer' ? 'system' : item.role, content: contentText(item.content) });
    } else {
      return llama ? flavor.error('invalid', "Cannot determine type of 'item'") : flavor.invalidField('input', 'Input tag does not match any of the expected tags', item);
    }
  }
  return messages;
}

function responsesTools(body: Body, flavor: Flavor): ToolSpec[] | Reply {
  const raw = body.tools;
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    return flavor.name === 'llamacpp' ? flavor.error('invalid', "'tools' must be an array of objects") : flavor.invalidField('tools', 'Input should be a valid list', raw);
  }
  const tools: ToolSpec[] = [];
  // Only function tools map onto chat; built-in tools (web search...) are skipped by both runtimes here.
  for (const tool of raw) {
    if (isRecord(tool) && tool.type === 'function' && typeof tool.name === 'string') tools.push({ name: tool.name, parameters: tool.parameters });
  }
  return tools;
}

function responsesToolChoice(value: unknown, tools: ToolSpec[]): ToolChoice {
  if (value === 'none' || value === 'required') return value;
  if (isRecord(value) && value.type === 'function' && typeof value.name === 'string') return { name: value.name };
  return tools.length > 0 ? 'auto' : 'none';
}

/** vLLM honours `text.format` (structured outputs); llama.cpp passes `text` on to chat, which ignores it. */
function responsesJson(body: Body, flavor: Flavor): JsonFormat | undefined {
  if (flavor.name === 'llamacpp' || !isRecord(body.text) || !isRecord(body.text.format)) return undefined;
  const format = body.text.format;
  if (format.type === 'json_schema') return { schema: format.schema };
  if (format.type === 'json_object') return { schema: undefined };
  return undefined;
}

export function parseResponses(body: unknown, flavor: Flavor): ChatFields | Reply {
  if (!isRecord(body)) return flavor.invalidField('body', 'Input should be a valid dictionary', body);
  const llama = flavor.name === 'llamacpp';
  if (body.input === undefined) return llama ? flavor.error('invalid', "'input' is required") : flavor.missingField('input', 'responses', body);
  const previous = body.previous_response_id;
  if (typeof previous === 'string' && previous !== '') {
    // llama.cpp refuses it outright; vLLM without VLLM_ENABLE_RESPONSES_API_STORE never stored anything to find.
    return llama
      ? flavor.error('invalid', "llama.cpp does not support 'previous_response_id'.")
      : typedError(404, 'invalid_request_error', `Response with id '${previous}' not found.`, 'response_id');
  }
  const base = common(body, flavor);
  if (isReply(base)) return base;
  const messages = responsesMessages(body, flavor);
  if (isReply(messages)) return messages;
  const tools = responsesTools(body, flavor);
  if (isReply(tools)) return tools;
  const maxTokens = scalar(body, 'max_output_tokens', isInteger, 'a valid integer', flavor);
  if (isReply(maxTokens)) return maxTokens;
  const stop = parseStop(body.stop, 'stop', flavor);
  if (isReply(stop)) return stop;
  return {
    endpoint: 'responses',
    ...base,
    streamOptions: undefined,
    maxTokens,
    messages,
    tools,
    toolChoice: responsesToolChoice(body.tool_choice, tools),
    n: 1,
    stop,
    logprobs: undefined,
    json: responsesJson(body, flavor),
    request: body,
  };
}

// ---------------------------------------------------------------- Anthropic Messages

function anthropicMessages(body: Body): Message[] {
  const messages: Message[] = [];
  const system = body.system;
  const systemText = typeof system === 'string' ? system : contentText(system);
  if (systemText !== '') messages.push({ role: 'system', content: systemText });
  for (const message of body.messages as unknown[]) {
    if (!isRecord(message)) continue;
    const role = typeof message.role === 'string' ? message.role : 'user';
    const content = message.content;
    if (!Array.isArray(content)) {
      messages.push({ role, content: typeof content === 'string' ? content : '' });
      continue;
    }
    let text = '';
    const calls: unknown[] = [];
    const results: Message[] = [];
    for (const block of content) {
      if (!isRecord(block)) continue;
      if (block.type === 'text' && typeof block.text === 'string') text += block.text;
      else if (block.type === 'thinking' && typeof block.thinking === 'string') text += block.thinking;
      else if (block.type === 'tool_use') calls.push({ name: block.name, arguments: JSON.stringify(block.input ?? {}) });
      else if (block.type === 'tool_result') results.push({ role: 'tool', content: contentText(block.content) });
    }
    // Tool results become `tool` messages of their own, after what else the turn said.
    if (text !== '' || calls.length > 0) messages.push(calls.length > 0 ? { role, content: text, tool_calls: calls } : { role, content: text });
    messages.push(...results);
  }
  return messages;
}

function anthropicTools(body: Body, flavor: Flavor): ToolSpec[] | Reply {
  const raw = body.tools;
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) return flavor.invalidField('tools', 'Input should be a valid list', raw);
  const tools: ToolSpec[] = [];
  for (const tool of raw) {
    if (!isRecord(tool) || typeof tool.name !== 'string') return flavor.invalidField('tools', 'Field required', tool);
    tools.push({ name: tool.name, parameters: tool.input_schema });
  }
  return tools;
}

/** llama.cpp maps `any` and `tool` to "required" and drops `none`; vLLM keeps a named tool and `none`. */
function anthropicToolChoice(value: unknown, tools: ToolSpec[], flavor: Flavor): ToolChoice {
  const fallback: ToolChoice = tools.length > 0 ? 'auto' : 'none';
  if (!isRecord(value)) return fallback;
  const llama = flavor.name === 'llamacpp';
  switch (value.type) {
    case 'any':
      return 'required';
    case 'tool':
      return llama || typeof value.name !== 'string' ? 'required' : { name: value.name };
    case 'none':
      return llama ? fallback : 'none';
    default:
      return fallback;
  }
}

/** vLLM's `output_config.format` (json_schema); llama.cpp ignores it. */
function anthropicJson(body: Body, flavor: Flavor): JsonFormat | undefined {
  if (flavor.name === 'llamacpp' || !isRecord(body.output_config) || !isRecord(body.output_config.format)) return undefined;
  const schema = body.output_config.format.schema;
  return schema === undefined ? undefined : { schema };
}

/** The fields Anthropic requires; vLLM's pydantic model rejects the request without them, llama.cpp is permissive. */
function anthropicRequired(body: Body, flavor: Flavor, countOnly: boolean): Reply | undefined {
  if (flavor.name === 'llamacpp') {
    // server_chat_convert_anthropic_to_oai throws a runtime_error: a 500, not a 400.
    return body.messages === undefined ? flavor.error('server', "'messages' is required") : undefined;
  }
  for (const field of countOnly ? ['model', 'messages'] : ['model', 'messages', 'max_tokens']) {
    if (body[field] === undefined || body[field] === null) return flavor.missingField(field, 'messages', body);
  }
  if (!Array.isArray(body.messages)) return flavor.invalidField('messages', 'Input should be a valid list', body.messages);
  if (!countOnly && (!isInteger(body.max_tokens) || body.max_tokens <= 0)) {
    return flavor.invalidField('max_tokens', 'Value error, max_tokens must be positive', body.max_tokens);
  }
  return undefined;
}

/** Anthropic's default when `max_tokens` is absent is llama.cpp's own: 4096. */
const LLAMACPP_ANTHROPIC_MAX_TOKENS = 4096;

export function parseMessages(body: unknown, flavor: Flavor): ChatFields | Reply {
  if (!isRecord(body)) return flavor.invalidField('body', 'Input should be a valid dictionary', body);
  const missing = anthropicRequired(body, flavor, false);
  if (missing !== undefined) return missing;
  const base = common(body, flavor);
  if (isReply(base)) return base;
  const tools = anthropicTools(body, flavor);
  if (isReply(tools)) return tools;
  const maxTokens = scalar(body, 'max_tokens', isInteger, 'a valid integer', flavor);
  if (isReply(maxTokens)) return maxTokens;
  const stop = parseStop(body.stop_sequences, 'stop_sequences', flavor);
  if (isReply(stop)) return stop;
  return {
    endpoint: 'messages',
    ...base,
    // vLLM turns on include_usage + continuous usage to build message_start and message_delta.
    streamOptions: undefined,
    maxTokens: maxTokens ?? (flavor.name === 'llamacpp' ? LLAMACPP_ANTHROPIC_MAX_TOKENS : undefined),
    messages: Array.isArray(body.messages) ? anthropicMessages(body) : [],
    tools,
    toolChoice: anthropicToolChoice(body.tool_choice, tools, flavor),
    n: 1,
    stop,
    logprobs: undefined,
    json: anthropicJson(body, flavor),
    request: body,
  };
}

// ---------------------------------------------------------------- count_tokens / input_tokens

export function parseCountTokens(surface: 'responses' | 'messages', body: unknown, flavor: Flavor): CountTokensFields | Reply {
  if (!isRecord(body)) return flavor.invalidField('body', 'Input should be a valid dictionary', body);
  let chat: ChatFields | Reply;
  if (surface === 'messages') {
    const missing = anthropicRequired(body, flavor, true);
    if (missing !== undefined) return missing;
    // max_tokens plays no part in counting; give the parser one so it never asks for it.
    chat = parseMessages({ max_tokens: 1, ...body }, flavor);
  } else {
    chat = parseResponses(body, flavor);
  }
  if (isReply(chat)) return chat;
  return { endpoint: 'count-tokens', surface, model: chat.model, chat };
}

// ---------------------------------------------------------------- rerank

export function parseRerank(body: unknown, flavor: Flavor): RerankFields | Reply {
  if (!isRecord(body)) return flavor.invalidField('body', 'Input should be a valid dictionary', body);
  const llama = flavor.name === 'llamacpp';
  const model = scalar(body, 'model', isString, 'a valid string', flavor);
  if (isReply(model)) return model;
  const query = body.query;
  if (query === undefined || query === null) return llama ? flavor.error('invalid', '"query" must be provided') : flavor.missingField('query', 'rerank', body);
  if (typeof query !== 'string') return llama ? flavor.error('invalid', '"query" must be a string') : flavor.invalidField('query', 'Input should be a valid string', query);
  const tei = llama && body.texts !== undefined;
  const raw = llama ? (body.documents ?? body.texts) : body.documents;
  if (raw === undefined && !llama) return flavor.missingField('documents', 'rerank', body);
  const documents = Array.isArray(raw) ? raw.filter((item): item is string => typeof item === 'string') : [];
  if (documents.length === 0 || (Array.isArray(raw) && documents.length !== raw.length)) {
    return llama ? flavor.error('invalid', '"documents" must be a non-empty string array') : flavor.invalidField('documents', 'Input should be a valid list of strings', raw);
  }
  const topRaw = body.top_n;
  // vLLM's default top_n is 0, meaning all; llama.cpp's is the number of documents.
  const topN = isInteger(topRaw) && topRaw > 0 ? topRaw : undefined;
  return { endpoint: 'rerank', model, seed: undefined, query, documents, topN, tei, returnText: tei && body.return_text === true };
}
