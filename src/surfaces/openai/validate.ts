/**
 * The few checks the gateway makes itself before forwarding an OpenAI
 * request: the fields it needs (`model`, the prompt field, `stream`).
 * Everything else is the runtime's to judge and passes through untouched.
 */
import { gatewayError, type GatewayError } from '../../errors.ts';
import type { Endpoint } from '../../wire/types.ts';

/** The OpenAI API's own endpoints. */
export type OpenAIEndpoint = Exclude<Endpoint, 'rerank'>;

/** Which request field carries the prompt, per endpoint. */
export const promptParams: Record<OpenAIEndpoint, string> = { chat: 'messages', completion: 'prompt', embedding: 'input' };

/** A 400 naming the field at fault. */
export function invalid(param: string, message: string): GatewayError {
  return gatewayError('SWY_ERR_INVALID_PARAM', { param, message });
}

/** A value's JSON type, for messages. */
export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/** Checks `model`: a non-empty string. Returns it. */
export function requireModel(json: Record<string, unknown>): string {
  const model = json.model;
  if (model === undefined) throw invalid('model', 'You must provide a model parameter (one of GET /v1/models).');
  if (typeof model !== 'string' || model.length === 0) throw invalid('model', `model must be a non-empty string, got ${typeName(model)}.`);
  return model;
}

/** Checks `stream` (boolean when present); returns true when the client asked for a stream. */
export function streamFlag(json: Record<string, unknown>): boolean {
  if (json.stream !== undefined && json.stream !== null && typeof json.stream !== 'boolean') {
    throw invalid('stream', `stream must be a boolean, got ${typeName(json.stream)}.`);
  }
  return json.stream === true;
}

/** Throws a 400 with `param` when the request lacks what the gateway needs; returns the model. */
export function validateBody(endpoint: OpenAIEndpoint, json: Record<string, unknown>): string {
  const model = requireModel(json);
  streamFlag(json);
  const options = json.stream_options;
  if (options !== undefined && options !== null && (typeof options !== 'object' || Array.isArray(options))) {
    throw invalid('stream_options', `stream_options must be an object, got ${typeName(options)}.`);
  }
  const param = promptParams[endpoint];
  const prompt = json[param];
  if (prompt === undefined || prompt === null) throw invalid(param, `Missing required parameter: '${param}'.`);
  if (endpoint === 'chat') {
    if (!Array.isArray(prompt)) throw invalid('messages', `messages must be an array of message objects, got ${typeName(prompt)}.`);
    if (prompt.length === 0) throw invalid('messages', 'messages must contain at least one message.');
    prompt.forEach((message, index) => {
      if (message === null || typeof message !== 'object' || Array.isArray(message)) {
        throw invalid(`messages[${index}]`, `messages[${index}] must be an object with a role, got ${typeName(message)}.`);
      }
      if (typeof (message as { role?: unknown }).role !== 'string') {
        throw invalid(`messages[${index}].role`, `messages[${index}].role must be a string such as "user".`);
      }
    });
  } else if (typeof prompt !== 'string' && !Array.isArray(prompt)) {
    throw invalid(param, `${param} must be a string or an array, got ${typeName(prompt)}.`);
  } else if (Array.isArray(prompt) && prompt.length === 0) {
    throw invalid(param, `${param} must not be empty.`);
  }
  return model;
}
