/**
 * Cheap request-size estimates for routing: prompt tokens from the text
 * length (about four characters a token for English and code; an estimate,
 * not a tokenizer) and the completion budget from max_tokens.
 */

const perMessageOverhead = 4;
/** Completion budget assumed when a request sets no max_tokens (for latency prediction only). */
export const defaultCompletionBudget = 256;

function textLength(value: unknown): number {
  if (typeof value === 'string') return value.length;
  if (Array.isArray(value)) return value.reduce((sum: number, part) => sum + textLength(part), 0);
  if (value && typeof value === 'object') {
    const part = value as { text?: unknown; content?: unknown };
    return textLength(part.text ?? part.content ?? '');
  }
  return 0;
}

/** Estimated prompt tokens of a chat, completion or embedding request body. */
export function estimatePromptTokens(json: Record<string, unknown>): number {
  const messages = json.messages;
  if (Array.isArray(messages)) {
    let chars = 0;
    for (const message of messages) chars += textLength((message as { content?: unknown })?.content) + perMessageOverhead * 4;
    return Math.ceil(chars / 4);
  }
  const prompt = json.prompt ?? json.input;
  if (Array.isArray(prompt) && prompt.every((item) => typeof item === 'number')) return prompt.length;
  return Math.ceil(textLength(prompt) / 4);
}

/** The request's completion budget: max_completion_tokens, max_tokens, or 0 when unset. */
export function requestedMaxTokens(json: Record<string, unknown>): number {
  const value = json.max_completion_tokens ?? json.max_tokens;
  return typeof value === 'number' && value > 0 ? Math.floor(value) : 0;
}
