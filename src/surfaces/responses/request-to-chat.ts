/**
 * OpenAI Responses request -> chat completions request, for backends that do not serve
 * /v1/responses themselves. Pure: the caller passes the parsed body (and, for
 * previous_response_id, the earlier turns' items) and gets a chat body for the same model.
 *
 * Mapping (README "Responses <-> chat"): `instructions` -> first system message; `input` items ->
 * messages (consecutive assistant-side items — reasoning, message, function_call — merge into one
 * assistant message, as the chat format carries them); function tools -> chat tools;
 * `max_output_tokens` -> `max_tokens`; `text.format` -> `response_format`; `reasoning.effort` ->
 * `reasoning_effort`. Fields only the Responses API knows (metadata, store, include, truncation,
 * prompt_cache_key, …) stay at the gateway; other unknown fields pass on like vendor extras do on chat.
 */
import { invalidParam, isRecord, requireArray, requireObject, requireString, type JsonObject } from '../translate-common.ts';

/** Request members the Responses API defines; everything else passes on to chat untouched. */
const responsesMembers = new Set([
  'model',
  'input',
  'instructions',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'max_output_tokens',
  'temperature',
  'top_p',
  'text',
  'reasoning',
  'user',
  'stream',
  'stream_options',
  'metadata',
  'store',
  'previous_response_id',
  'include',
  'truncation',
  'service_tier',
  'background',
  'prompt',
  'conversation',
  'prompt_cache_key',
  'prompt_cache_retention',
  'safety_identifier',
  'max_tool_calls',
  'top_logprobs',
  'context_management',
]);

/** Fields that would change what the request means, which a chat backend cannot honour. */
function refuseUnsupported(body: JsonObject): void {
  if (body.background === true) {
    throw invalidParam(
      'background',
      'background responses are not supported by this gateway: send the request without `background` (or with false) and keep the connection open, or stream it.',
    );
  }
  if (body.prompt !== undefined && body.prompt !== null) {
    throw invalidParam('prompt', 'Stored prompt templates are not supported by this gateway: send the prompt text as `input` (and `instructions`).');
  }
  if (body.conversation !== undefined && body.conversation !== null) {
    throw invalidParam('conversation', 'Conversations are not supported by this gateway: send the earlier turns as `input` items, or use previous_response_id.');
  }
}

type ChatMessage = JsonObject;

function imagePart(part: JsonObject, param: string): JsonObject {
  if (typeof part.image_url !== 'string' || part.image_url === '') {
    throw invalidParam(`${param}.image_url`, `${param} needs an image_url (an https URL or a data: URL); uploaded file_id images are not supported by this gateway.`);
  }
  const image: JsonObject = { url: part.image_url };
  if (typeof part.detail === 'string') image.detail = part.detail;
  return { type: 'image_url', image_url: image };
}

/** A user (or tool output) content list -> chat content parts. */
function userParts(content: unknown[], param: string): JsonObject[] {
  return content.map((raw, index) => {
    const partParam = `${param}[${index}]`;
    const part = requireObject(raw, partParam, 'an input_text or input_image part');
    switch (part.type) {
      case 'input_text':
      case 'output_text':
      case 'text':
        return { type: 'text', text: requireString(part.text, `${partParam}.text`, 'the text of the part') };
      case 'input_image':
        return imagePart(part, partParam);
      case 'input_file':
        throw invalidParam(`${partParam}.type`, `input_file parts are not supported by this gateway: send the file's text as an input_text part.`);
      default:
        throw invalidParam(`${partParam}.type`, `${partParam}.type must be input_text or input_image.`);
    }
  });
}

/** Text-only part lists collapse to a string: every chat template takes that. */
function collapse(parts: JsonObject[]): string | JsonObject[] {
  if (parts.every((part) => part.type === 'text')) return parts.map((part) => part.text as string).join('');
  return parts;
}

/** Assistant or system content (string or parts) -> plain text. */
function plainText(content: unknown, param: string): string {
  if (typeof content === 'string') return content;
  const parts = requireArray(content, param, 'a string or a list of text parts');
  let text = '';
  parts.forEach((raw, index) => {
    const partParam = `${param}[${index}]`;
    const part = requireObject(raw, partParam, 'a text part');
    if (part.type === 'refusal') text += requireString(part.refusal, `${partParam}.refusal`, 'the refusal text');
    else if (part.type === 'output_text' || part.type === 'input_text' || part.type === 'text') {
      text += requireString(part.text, `${partParam}.text`, 'the text of the part');
    } else {
      throw invalidParam(`${partParam}.type`, `${partParam}.type must be output_text, input_text or refusal in this message.`);
    }
  });
  return text;
}

/** The assistant message the next assistant-side item joins: the last message, when it is one. */
function openAssistant(messages: ChatMessage[]): ChatMessage | undefined {
  const last = messages.at(-1);
  return last?.role === 'assistant' ? last : undefined;
}

function appendAssistantText(messages: ChatMessage[], text: string): void {
  const open = openAssistant(messages);
  if (open && open.tool_calls === undefined) {
    open.content = typeof open.content === 'string' ? open.content + text : text;
  } else {
    messages.push({ role: 'assistant', content: text });
  }
}

function appendMessage(messages: ChatMessage[], item: JsonObject, param: string): void {
  const role = item.role;
  if (role === 'assistant') {
    appendAssistantText(messages, plainText(item.content, `${param}.content`));
    return;
  }
  if (role === 'system' || role === 'developer') {
    // Chat templates know `system`; `developer` is the Responses name for the same thing.
    messages.push({ role: 'system', content: plainText(item.content, `${param}.content`) });
    return;
  }
  if (role === 'user') {
    const content = item.content;
    if (typeof content === 'string') messages.push({ role: 'user', content });
    else messages.push({ role: 'user', content: collapse(userParts(requireArray(content, `${param}.content`, 'a string or a list of input parts'), `${param}.content`)) });
    return;
  }
  throw invalidParam(`${param}.role`, `${param}.role must be user, assistant, system or developer.`);
}

function appendFunctionCall(messages: ChatMessage[], item: JsonObject, param: string): void {
  const call = {
    id: requireString(item.call_id, `${param}.call_id`, 'the call id the function_call_output will answer'),
    type: 'function',
    function: {
      name: requireString(item.name, `${param}.name`, 'the function name'),
      arguments: requireString(item.arguments, `${param}.arguments`, 'the JSON arguments as text'),
    },
  };
  const open = openAssistant(messages);
  if (open) {
    if (Array.isArray(open.tool_calls)) open.tool_calls.push(call);
    else open.tool_calls = [call];
  } else {
    messages.push({ role: 'assistant', content: null, tool_calls: [call] });
  }
}

function appendFunctionOutput(messages: ChatMessage[], item: JsonObject, param: string): void {
  const callId = requireString(item.call_id, `${param}.call_id`, 'the call_id of the function_call it answers');
  const output = item.output;
  const content =
    typeof output === 'string' ? output : collapse(userParts(requireArray(output, `${param}.output`, 'a string or a list of input_text/input_image parts'), `${param}.output`));
  messages.push({ role: 'tool', tool_call_id: callId, content });
}

function reasoningOf(item: JsonObject): string {
  let text = '';
  if (Array.isArray(item.content)) {
    for (const part of item.content) if (isRecord(part) && typeof part.text === 'string') text += part.text;
  }
  if (text === '' && Array.isArray(item.summary)) {
    // Without the full reasoning, its summary is what the model said it thought.
    const summaries: string[] = [];
    for (const part of item.summary) if (isRecord(part) && typeof part.text === 'string') summaries.push(part.text);
    text = summaries.join('\n\n');
  }
  return text;
}

function appendReasoning(messages: ChatMessage[], item: JsonObject): void {
  const text = reasoningOf(item);
  if (text === '') return;
  // Reasoning opens an assistant turn; only a turn holding nothing but reasoning so far takes more.
  const open = openAssistant(messages);
  if (open && open.tool_calls === undefined && (open.content === undefined || open.content === null)) {
    open.reasoning_content = typeof open.reasoning_content === 'string' ? `${open.reasoning_content}\n\n${text}` : text;
  } else {
    messages.push({ role: 'assistant', reasoning_content: text });
  }
}

function appendItem(messages: ChatMessage[], raw: unknown, param: string): void {
  const item = requireObject(raw, param, 'an input item (a message, function_call, function_call_output or reasoning item)');
  switch (item.type) {
    case undefined:
    case 'message':
      appendMessage(messages, item, param);
      return;
    case 'function_call':
      appendFunctionCall(messages, item, param);
      return;
    case 'function_call_output':
      appendFunctionOutput(messages, item, param);
      return;
    case 'reasoning':
      appendReasoning(messages, item);
      return;
    case 'item_reference':
      throw invalidParam(`${param}.type`, 'item_reference items are not supported by this gateway: send the item itself, or continue with previous_response_id.');
    default:
      throw invalidParam(
        `${param}.type`,
        `${param}.type ${JSON.stringify(item.type)} is not supported by this gateway: it translates message, function_call, function_call_output and reasoning items.`,
      );
  }
}

function chatMessages(body: JsonObject, history: unknown[] | undefined): ChatMessage[] {
  const messages: ChatMessage[] = [];
  const instructions = body.instructions;
  if (instructions !== undefined && instructions !== null) {
    messages.push({ role: 'system', content: requireString(instructions, 'instructions', 'the system prompt text') });
  }
  if (history) for (const [index, item] of history.entries()) appendItem(messages, item, `previous_response_id(input[${index}])`);
  const input = body.input;
  if (typeof input === 'string') messages.push({ role: 'user', content: input });
  else if (Array.isArray(input)) for (const [index, item] of input.entries()) appendItem(messages, item, `input[${index}]`);
  else if (input !== undefined || !history) throw invalidParam('input', 'input is required: a string, or a list of input items (messages, function_call_output, …).');
  for (const message of messages) {
    // The chat format wants content on every assistant message: null beside tool calls, else text.
    if (message.role === 'assistant' && message.content === undefined) message.content = message.tool_calls ? null : '';
  }
  if (messages.length === 0) throw invalidParam('input', 'input has no messages: send at least one input item.');
  return mergeLeadingSystem(messages);
}

/**
 * `instructions` followed by developer/system input items (as Codex sends them) would give several
 * system messages in a row; many chat templates (Gemma, Mistral, Llama) accept one system message
 * only, so the leading ones join into one.
 */
function mergeLeadingSystem(messages: ChatMessage[]): ChatMessage[] {
  let count = 0;
  while (messages[count]?.role === 'system') count++;
  if (count < 2) return messages;
  const content = messages
    .slice(0, count)
    .map((message) => message.content as string)
    .join('\n\n');
  return [{ role: 'system', content }, ...messages.slice(count)];
}

/**
 * Function tools become chat tools. Other tool types (hosted tools such as
 * web_search, Codex's `namespace` groups, custom/freeform tools) have no chat
 * equivalent: they are left out, as llama.cpp's own translation does, so agents
 * that always offer them (Codex CLI) still work; the model just cannot call them.
 */
function chatTools(tools: unknown): JsonObject[] {
  return requireArray(tools, 'tools', 'a list of function tools').flatMap((raw, index) => {
    const param = `tools[${index}]`;
    const tool = requireObject(raw, param, 'a function tool');
    if (tool.type !== 'function') return [];
    const fn: JsonObject = { name: requireString(tool.name, `${param}.name`, 'the function name') };
    if (typeof tool.description === 'string') fn.description = tool.description;
    if (isRecord(tool.parameters)) fn.parameters = tool.parameters;
    if (typeof tool.strict === 'boolean') fn.strict = tool.strict;
    return { type: 'function', function: fn };
  });
}

function toolName(tool: JsonObject): string {
  return (tool.function as JsonObject).name as string;
}

/** tool_choice, and for `allowed_tools` the tool list narrowed to the allowed functions. */
function chatToolChoice(choice: unknown, tools: JsonObject[]): { choice: unknown; tools: JsonObject[] } {
  if (choice === 'none' || choice === 'auto' || choice === 'required') return { choice, tools };
  const object = requireObject(choice, 'tool_choice', 'none, auto, required, {"type":"function","name":…} or {"type":"allowed_tools",…}');
  if (object.type === 'function') {
    return { choice: { type: 'function', function: { name: requireString(object.name, 'tool_choice.name', 'the function to call') } }, tools };
  }
  if (object.type === 'allowed_tools') {
    const mode = object.mode;
    if (mode !== 'auto' && mode !== 'required') throw invalidParam('tool_choice.mode', 'tool_choice.mode must be auto or required.');
    const allowed = new Set<string>();
    requireArray(object.tools, 'tool_choice.tools', 'the allowed tools').forEach((raw, index) => {
      const tool = requireObject(raw, `tool_choice.tools[${index}]`, 'a {"type":"function","name":…} entry');
      if (tool.type !== 'function') throw invalidParam(`tool_choice.tools[${index}].type`, 'Only function tools can be allowed on this gateway.');
      allowed.add(requireString(tool.name, `tool_choice.tools[${index}].name`, 'the function name'));
    });
    return { choice: mode, tools: tools.filter((tool) => allowed.has(toolName(tool))) };
  }
  throw invalidParam('tool_choice', `tool_choice type ${JSON.stringify(object.type)} is not supported by this gateway: use none, auto, required, a function or allowed_tools.`);
}

function responseFormat(text: unknown): JsonObject | undefined {
  if (text === undefined || text === null) return undefined;
  const config = requireObject(text, 'text', 'the text output configuration');
  const format = config.format;
  if (format === undefined || format === null) return undefined;
  const spec = requireObject(format, 'text.format', 'a format: {"type":"text"}, {"type":"json_object"} or {"type":"json_schema",…}');
  switch (spec.type) {
    case 'text':
      return undefined;
    case 'json_object':
      return { type: 'json_object' };
    case 'json_schema': {
      const schema: JsonObject = {
        name: requireString(spec.name, 'text.format.name', 'a name for the schema'),
        schema: requireObject(spec.schema, 'text.format.schema', 'the JSON Schema the output must follow'),
      };
      if (typeof spec.description === 'string') schema.description = spec.description;
      if (typeof spec.strict === 'boolean') schema.strict = spec.strict;
      return { type: 'json_schema', json_schema: schema };
    }
    default:
      throw invalidParam('text.format.type', 'text.format.type must be text, json_object or json_schema.');
  }
}

function optionalNumber(body: JsonObject, key: string): number | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalidParam(key, `${key} must be a number.`);
  return value;
}

/**
 * A Responses request as a chat completions request for the same model. `history` holds the input
 * items of earlier turns (previous_response_id), placed before this request's input.
 * Throws SWY_ERR_INVALID_PARAM, naming the parameter and how to fix it.
 */
export function responsesRequestToChat(body: JsonObject, history?: unknown[]): JsonObject {
  refuseUnsupported(body);
  const chat: JsonObject = { model: body.model, messages: chatMessages(body, history) };

  if (body.tools !== undefined && body.tools !== null) {
    let tools = chatTools(body.tools);
    if (body.tool_choice !== undefined && body.tool_choice !== null) {
      const translated = chatToolChoice(body.tool_choice, tools);
      tools = translated.tools;
      if (tools.length > 0 || translated.choice === 'none') chat.tool_choice = translated.choice;
    }
    if (tools.length > 0) chat.tools = tools;
  }
  if (typeof body.parallel_tool_calls === 'boolean' && chat.tools !== undefined) chat.parallel_tool_calls = body.parallel_tool_calls;

  const maxOutput = optionalNumber(body, 'max_output_tokens');
  if (maxOutput !== undefined) chat.max_tokens = maxOutput;
  const temperature = optionalNumber(body, 'temperature');
  if (temperature !== undefined) chat.temperature = temperature;
  const topP = optionalNumber(body, 'top_p');
  if (topP !== undefined) chat.top_p = topP;

  const format = responseFormat(body.text);
  if (format) chat.response_format = format;

  if (body.reasoning !== undefined && body.reasoning !== null) {
    const effort = requireObject(body.reasoning, 'reasoning', 'the reasoning options').effort;
    if (effort !== undefined && effort !== null) chat.reasoning_effort = requireString(effort, 'reasoning.effort', 'none, minimal, low, medium or high');
  }
  if (body.user !== undefined && body.user !== null) chat.user = requireString(body.user, 'user', 'an end-user id');

  if (body.stream === true) {
    chat.stream = true;
    // Usage arrives as its own final chunk only when asked for; the answer needs it.
    chat.stream_options = { include_usage: true };
  }

  for (const key of Object.keys(body)) {
    if (!responsesMembers.has(key) && !(key in chat)) chat[key] = body[key];
  }
  return chat;
}
