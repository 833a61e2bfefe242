/**
 * Chat completion answer -> Response object (non-streaming /v1/responses translated onto chat),
 * and usage out of a native Response for metering.
 *
 * Output items, in the order the Responses API writes them: `reasoning` (from the runtime's
 * `reasoning_content` / `reasoning`), `message` (`output_text`, or `refusal`), then one
 * `function_call` per chat tool call (`call_id` = the chat tool call id).
 * finish_reason `length` -> status `incomplete`, incomplete_details.reason `max_output_tokens`.
 */
import type { Usage } from '../../wire/types.ts';
import { chatText, chatToolCalls, chatUsage, firstChoice, isRecord, reasoningText, type JsonObject } from '../translate-common.ts';
import { chatUsageFromResponses, itemIds, responseEnvelope, responseStatus, responsesUsageFromChat, type ResponsesContext } from './response-envelope.ts';

/** A chat completion as the Response object the client asked for. */
export function chatCompletionToResponse(chat: Record<string, unknown>, context: ResponsesContext): Record<string, unknown> {
  const choice = firstChoice(chat) ?? {};
  const message = isRecord(choice.message) ? choice.message : {};
  const { status, incomplete } = responseStatus(choice.finish_reason);
  const itemStatus = status === 'completed' ? 'completed' : 'incomplete';
  const ids = itemIds(context.id);
  const output: JsonObject[] = [];

  const reasoning = reasoningText(message);
  if (reasoning !== undefined) {
    output.push({ id: ids.reasoning, type: 'reasoning', summary: [], content: [{ type: 'reasoning_text', text: reasoning }], status: itemStatus });
  }
  const text = chatText(message.content);
  const refusal = typeof message.refusal === 'string' && message.refusal !== '' ? message.refusal : undefined;
  if (text !== '' || refusal !== undefined) {
    const content: JsonObject[] = [];
    if (text !== '') content.push({ type: 'output_text', text, annotations: [], logprobs: [] });
    if (refusal !== undefined) content.push({ type: 'refusal', refusal });
    output.push({ id: ids.message, type: 'message', role: 'assistant', status: itemStatus, content });
  }
  chatToolCalls(message, `call_${ids.functionCall.slice(3)}`).forEach((call, index) => {
    output.push({ id: `${ids.functionCall}_${index}`, type: 'function_call', status: itemStatus, call_id: call.id, name: call.name, arguments: call.arguments });
  });

  const response = responseEnvelope(context, status);
  response.incomplete_details = incomplete;
  response.output = output;
  const usage = chatUsage(chat);
  if (usage) response.usage = responsesUsageFromChat(usage);
  return response;
}

/**
 * Usage of a native /v1/responses answer, or of a stream event that carries the response
 * (`response.completed`, `response.incomplete`, `response.failed`), in the chat Usage shape.
 */
export function responsesUsage(body: Record<string, unknown>): Usage | undefined {
  const response = isRecord(body.response) ? body.response : body;
  return chatUsageFromResponses(response.usage);
}
