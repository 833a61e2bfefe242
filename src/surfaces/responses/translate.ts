/**
 * The Responses surface's translators onto chat completions (pure; the pipeline wires them):
 * request -> chat request, chat answer -> Response, chat stream -> Responses events, and usage
 * out of a native Response.
 */
export { responsesRequestToChat } from './request-to-chat.ts';
export { chatCompletionToResponse, responsesUsage } from './response-from-chat.ts';
export { ChatStreamToResponses } from './stream-from-chat.ts';
export { chatUsageFromResponses, responsesUsageFromChat, type ResponsesContext } from './response-envelope.ts';
