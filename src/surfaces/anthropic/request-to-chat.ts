/**
 * Anthropic Messages request -> chat completions request, for backends that do not serve
 * /v1/messages themselves. Pure.
 *
 * Mapping (README "Messages <-> chat"): `system` -> first system message; user `text`/`image`
 * blocks -> content parts; `tool_result` blocks -> `tool` messages (placed before the rest of their
 * user turn, right after the assistant's tool calls, as chat templates expect); assistant
 * `tool_use` -> tool_calls (input serialised), `thinking` -> reasoning_content; `tools`
 * (`input_schema`) -> function tools; tool_choice auto/any/tool/none -> auto/required/function/none;
 * `stop_sequences` -> `stop`; `thinking.budget_tokens` -> `thinking_budget_tokens` (llama.cpp's
 * reasoning budget); `output_config.format` -> `response_format`; `metadata.user_id` -> `user`. `max_tokens` is required, as on Anthropic's API.
 */
import { invalidParam, isRecord, requireArray, requireObject, requireString, type JsonObject } from '../translate-common.ts';

/** Request members the Messages API defines; everything else passes on to chat untouched. */
const messagesMembers = new Set([
  'model',
  'messages',
  'system',
  'max_tokens',
  'stop_sequences',
  'temperature',
  'top_p',
  'top_k',
  'tools',
  'tool_choice',
  'thinking',
  'metadata',
  'stream',
  'service_tier',
  'container',
  'context_management',
  'mcp_servers',
  'output_config',
  'output_format',
  'inference_geo',
]);

/**
 * Claude Code's first system block is a billing header whose `cch=` stamp changes on every request;
 * it means nothing to a self-hosted model and would defeat prefix caching, the response cache and
 * affinity, so it is left out.
 */
const billingHeader = 'x-anthropic-billing-header:';

function systemText(system: unknown, param: string): string | undefined {
  if (system === undefined || system === null) return undefined;
  if (typeof system === 'string') return system;
  const texts: string[] = [];
  requireArray(system, param, 'a string or a list of text blocks').forEach((raw, index) => {
    const block = requireObject(raw, `${param}[${index}]`, 'a text block');
    if (block.type !== 'text') throw invalidParam(`${param}[${index}].type`, 'system blocks must be text blocks.');
    const text = requireString(block.text, `${param}[${index}].text`, 'the system prompt text');
    if (!text.startsWith(billingHeader)) texts.push(text);
  });
  return texts.length === 0 ? undefined : texts.join('\n');
}

function imagePart(block: JsonObject, param: string): JsonObject {
  const source = requireObject(block.source, `${param}.source`, 'the image source ({"type":"base64",…} or {"type":"url",…})');
  if (source.type === 'base64') {
    const mediaType = requireString(source.media_type, `${param}.source.media_type`, 'the image MIME type, e.g. image/png');
    const data = requireString(source.data, `${param}.source.data`, 'the base64 image bytes');
    return { type: 'image_url', image_url: { url: `data:${mediaType};base64,${data}` } };
  }
  if (source.type === 'url') return { type: 'image_url', image_url: { url: requireString(source.url, `${param}.source.url`, 'the image URL') } };
  throw invalidParam(`${param}.source.type`, 'Image sources must be base64 or url on this gateway (uploaded files are not supported).');
}

/** Text-only part lists collapse to a string: every chat template takes that. */
function collapse(parts: JsonObject[]): string | JsonObject[] {
  if (parts.every((part) => part.type === 'text')) return parts.map((part) => part.text as string).join('');
  return parts;
}

function toolResultContent(content: unknown, param: string): string | JsonObject[] {
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return content;
  const parts = requireArray(content, param, 'a string or a list of text/image blocks').map((raw, index) => {
    const block = requireObject(raw, `${param}[${index}]`, 'a text or image block');
    if (block.type === 'text') return { type: 'text', text: requireString(block.text, `${param}[${index}].text`, 'the text') };
    if (block.type === 'image') return imagePart(block, `${param}[${index}]`);
    throw invalidParam(`${param}[${index}].type`, 'tool_result content blocks must be text or image on this gateway.');
  });
  return collapse(parts);
}

function userTurn(content: unknown, param: string): JsonObject[] {
  if (typeof content === 'string') return [{ role: 'user', content }];
  const blocks = requireArray(content, param, 'a string or a list of content blocks');
  const toolMessages: JsonObject[] = [];
  const parts: JsonObject[] = [];
  blocks.forEach((raw, index) => {
    const blockParam = `${param}[${index}]`;
    const block = requireObject(raw, blockParam, 'a content block');
    switch (block.type) {
      case 'text':
        parts.push({ type: 'text', text: requireString(block.text, `${blockParam}.text`, 'the text') });
        return;
      case 'image':
        parts.push(imagePart(block, blockParam));
        return;
      case 'tool_result':
        toolMessages.push({
          role: 'tool',
          tool_call_id: requireString(block.tool_use_id, `${blockParam}.tool_use_id`, 'the id of the tool_use block it answers'),
          content: toolResultContent(block.content, `${blockParam}.content`),
        });
        return;
      case 'thinking':
      case 'redacted_thinking':
        return;
      default:
        throw invalidParam(
          `${blockParam}.type`,
          `Content block type ${JSON.stringify(block.type)} is not supported by this gateway in a user turn: send text, image or tool_result blocks.`,
        );
    }
  });
  const messages = toolMessages;
  if (parts.length > 0) messages.push({ role: 'user', content: collapse(parts) });
  return messages;
}

function assistantTurn(content: unknown, param: string): JsonObject[] {
  if (typeof content === 'string') return [{ role: 'assistant', content }];
  const blocks = requireArray(content, param, 'a string or a list of content blocks');
  let text = '';
  let reasoning = '';
  const toolCalls: JsonObject[] = [];
  blocks.forEach((raw, index) => {
    const blockParam = `${param}[${index}]`;
    const block = requireObject(raw, blockParam, 'a content block');
    switch (block.type) {
      case 'text':
        text += requireString(block.text, `${blockParam}.text`, 'the text');
        return;
      case 'thinking':
        reasoning += requireString(block.thinking, `${blockParam}.thinking`, 'the thinking text');
        return;
      case 'redacted_thinking':
        return;
      case 'tool_use':
        toolCalls.push({
          id: requireString(block.id, `${blockParam}.id`, 'the tool_use id'),
          type: 'function',
          function: {
            name: requireString(block.name, `${blockParam}.name`, 'the tool name'),
            arguments: JSON.stringify(block.input ?? {}),
          },
        });
        return;
      default:
        throw invalidParam(
          `${blockParam}.type`,
          `Content block type ${JSON.stringify(block.type)} is not supported by this gateway in an assistant turn: send text, thinking or tool_use blocks.`,
        );
    }
  });
  const message: JsonObject = { role: 'assistant', content: text === '' && toolCalls.length > 0 ? null : text };
  if (reasoning !== '') message.reasoning_content = reasoning;
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  return [message];
}

/**
 * Turns in order; `system` turns inside `messages` (Claude Code sends one after the first user turn) join
 * the leading system message, since many chat templates accept a system message only at the start.
 */
function chatMessages(body: JsonObject): JsonObject[] {
  const messages: JsonObject[] = [];
  const systems: string[] = [];
  const system = systemText(body.system, 'system');
  if (system !== undefined) systems.push(system);
  const turns = requireArray(body.messages, 'messages', 'the conversation as a list of {"role","content"} turns');
  if (turns.length === 0) throw invalidParam('messages', 'messages must hold at least one turn.');
  turns.forEach((raw, index) => {
    const param = `messages[${index}]`;
    const turn = requireObject(raw, param, 'a {"role","content"} turn');
    if (turn.role === 'user') messages.push(...userTurn(turn.content, `${param}.content`));
    else if (turn.role === 'assistant') messages.push(...assistantTurn(turn.content, `${param}.content`));
    else if (turn.role === 'system') {
      const text = systemText(turn.content, `${param}.content`);
      if (text !== undefined) systems.push(text);
    } else throw invalidParam(`${param}.role`, `${param}.role must be user, assistant or system.`);
  });
  if (systems.length > 0) messages.unshift({ role: 'system', content: systems.join('\n\n') });
  return messages;
}

/**
 * Client tools (`{"name","description","input_schema"}`, type absent or
 * `custom`) become chat tools. Anthropic's server tools (web_search_…,
 * bash_…, text_editor_…) have no chat equivalent and are left out, so clients
 * that offer them still work; the model just cannot call them.
 */
function chatTools(tools: unknown): JsonObject[] {
  return requireArray(tools, 'tools', 'a list of tools').flatMap((raw, index) => {
    const param = `tools[${index}]`;
    const tool = requireObject(raw, param, 'a tool with name and input_schema');
    if (tool.type !== undefined && tool.type !== null && tool.type !== 'custom') return [];
    const fn: JsonObject = { name: requireString(tool.name, `${param}.name`, 'the tool name') };
    if (typeof tool.description === 'string') fn.description = tool.description;
    fn.parameters = requireObject(tool.input_schema, `${param}.input_schema`, 'the JSON Schema of the tool input');
    if (typeof tool.strict === 'boolean') fn.strict = tool.strict;
    return { type: 'function', function: fn };
  });
}

/** tool_choice, plus parallel_tool_calls false when the choice disables parallel tool use. */
function chatToolChoice(choice: JsonObject): { choice: unknown; parallel: boolean | undefined } {
  const parallel = choice.disable_parallel_tool_use === true ? false : undefined;
  switch (choice.type) {
    case 'auto':
      return { choice: 'auto', parallel };
    case 'any':
      return { choice: 'required', parallel };
    case 'none':
      return { choice: 'none', parallel };
    case 'tool':
      return { choice: { type: 'function', function: { name: requireString(choice.name, 'tool_choice.name', 'the tool to use') } }, parallel };
    default:
      throw invalidParam('tool_choice.type', 'tool_choice.type must be auto, any, tool or none.');
  }
}

function optionalNumber(body: JsonObject, key: string): number | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalidParam(key, `${key} must be a number.`);
  return value;
}

/** Structured output (`output_config.format`, or the older `output_format`) -> response_format. */
function outputFormat(body: JsonObject): JsonObject | undefined {
  const configured = isRecord(body.output_config) ? body.output_config.format : undefined;
  const format = configured ?? body.output_format;
  if (format === undefined || format === null) return undefined;
  const param = configured === undefined ? 'output_format' : 'output_config.format';
  const spec = requireObject(format, param, '{"type":"json_schema","schema":{…}}');
  if (spec.type !== 'json_schema') throw invalidParam(`${param}.type`, `${param}.type must be json_schema.`);
  return { type: 'json_schema', json_schema: { name: 'output', schema: requireObject(spec.schema, `${param}.schema`, 'the JSON Schema the answer must follow'), strict: true } };
}

/** Maximum output tokens: required, a positive integer. */
function maxTokens(body: JsonObject): number {
  const value = body.max_tokens;
  if (value === undefined || value === null) {
    throw invalidParam('max_tokens', 'max_tokens is required: the most tokens the answer may have (thinking included), e.g. "max_tokens": 1024.');
  }
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw invalidParam('max_tokens', 'max_tokens must be a positive integer.');
  return value;
}

/**
 * A Messages request as a chat completions request for the same model.
 * Throws SWY_ERR_INVALID_PARAM, naming the parameter and how to fix it.
 */
export function messagesRequestToChat(body: Record<string, unknown>): Record<string, unknown> {
  const chat: JsonObject = { model: body.model, messages: chatMessages(body), max_tokens: maxTokens(body) };

  if (body.mcp_servers !== undefined && body.mcp_servers !== null) {
    throw invalidParam('mcp_servers', 'MCP servers run by the API are not supported by this gateway: run the MCP client on your side and pass its tools as client tools.');
  }
  if (body.tools !== undefined && body.tools !== null) {
    const tools = chatTools(body.tools);
    if (tools.length > 0) chat.tools = tools;
  }
  if (body.tool_choice !== undefined && body.tool_choice !== null) {
    const translated = chatToolChoice(requireObject(body.tool_choice, 'tool_choice', '{"type":"auto"|"any"|"tool"|"none"}'));
    if (chat.tools !== undefined || translated.choice === 'none') chat.tool_choice = translated.choice;
    if (translated.parallel !== undefined && chat.tools !== undefined) chat.parallel_tool_calls = translated.parallel;
  }

  if (body.stop_sequences !== undefined && body.stop_sequences !== null) {
    const stops = requireArray(body.stop_sequences, 'stop_sequences', 'a list of strings');
    for (const [index, stop] of stops.entries()) requireString(stop, `stop_sequences[${index}]`, 'a stop sequence');
    if (stops.length > 0) chat.stop = stops;
  }
  for (const key of ['temperature', 'top_p', 'top_k']) {
    const value = optionalNumber(body, key);
    if (value !== undefined) chat[key] = value;
  }

  if (body.thinking !== undefined && body.thinking !== null) {
    const thinking = requireObject(body.thinking, 'thinking', '{"type":"enabled","budget_tokens":N} or {"type":"disabled"}');
    if (thinking.type === 'enabled' && typeof thinking.budget_tokens === 'number') chat.thinking_budget_tokens = thinking.budget_tokens;
  }
  if (isRecord(body.output_config) && typeof body.output_config.effort === 'string') {
    // Anthropic's effort levels beyond high have no chat equivalent; high is the most chat can ask.
    const effort = body.output_config.effort;
    chat.reasoning_effort = effort === 'max' || effort === 'xhigh' ? 'high' : effort;
  }
  const format = outputFormat(body);
  if (format) chat.response_format = format;
  if (isRecord(body.metadata) && typeof body.metadata.user_id === 'string') chat.user = body.metadata.user_id;

  if (body.stream === true) {
    chat.stream = true;
    chat.stream_options = { include_usage: true };
  }

  for (const key of Object.keys(body)) {
    if (!messagesMembers.has(key) && !(key in chat)) chat[key] = body[key];
  }
  return chat;
}
