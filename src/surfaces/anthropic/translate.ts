/**
 * The Anthropic Messages surface's translators onto chat completions (pure; the pipeline wires
 * them): request -> chat request, chat answer -> Message, chat stream -> Messages events, errors in
 * Anthropic's shape, and usage out of native Messages answers and stream events.
 */
export { messagesRequestToChat } from './request-to-chat.ts';
export {
  chatCompletionToMessage,
  mergeMessagesUsage,
  messagesUsage,
  messagesUsageFromChat,
  stopReason,
  type MessagesContext,
} from './message-from-chat.ts';
export { ChatStreamToMessages } from './stream-from-chat.ts';
export { anthropicError, anthropicErrorType } from './errors.ts';
