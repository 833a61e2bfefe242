/**
 * Token estimates for reservations, before the backend has counted anything.
 * An ESTIMATE, not a tokenizer: about 4 characters per token for English
 * (fewer for code and other scripts), plus OpenAI's documented overhead of
 * 3-4 tokens per chat message. The token limiter settles every reservation
 * with the real usage afterwards, so errors here only shift who waits when.
 */

const perMessage = 4;
const perReply = 3;
const perImage = 256;

function textTokens(chars: number): number {
  return Math.ceil(chars / 4);
}

function contentChars(content: unknown): { chars: number; images: number } {
  if (typeof content === 'string') return { chars: content.length, images: 0 };
  let chars = 0;
  let images = 0;
  if (Array.isArray(content)) {
    for (const part of content) {
      if (typeof part === 'string') chars += part.length;
      else if (part && typeof part === 'object') {
        const typed = part as { type?: string; text?: unknown };
        if (typeof typed.text === 'string') chars += typed.text.length;
        else if (typed.type === 'image_url' || typed.type === 'input_image' || typed.type === 'input_audio') images++;
      }
    }
  }
  return { chars, images };
}

function promptChars(prompt: unknown): number {
  if (typeof prompt === 'string') return prompt.length;
  if (!Array.isArray(prompt)) return 0;
  let chars = 0;
  for (const item of prompt) {
    if (typeof item === 'string') chars += item.length;
    else if (typeof item === 'number') chars += 4; // a token id
    else if (Array.isArray(item)) chars += item.length * 4; // a list of token ids
  }
  return chars;
}

/** Estimated prompt tokens of a chat, completion or embedding request body. */
export function estimatePromptTokens(body: Record<string, unknown>): number {
  const messages = body.messages;
  if (Array.isArray(messages)) {
    let tokens = perReply;
    for (const message of messages) {
      if (!message || typeof message !== 'object') continue;
      const typed = message as { content?: unknown; name?: unknown; tool_calls?: unknown };
      const { chars, images } = contentChars(typed.content);
      let extra = typeof typed.name === 'string' ? typed.name.length : 0;
      if (typed.tool_calls !== undefined) extra += JSON.stringify(typed.tool_calls).length;
      tokens += perMessage + textTokens(chars + extra) + images * perImage;
    }
    if (body.tools !== undefined) tokens += textTokens(JSON.stringify(body.tools).length);
    if (body.response_format !== undefined) tokens += textTokens(JSON.stringify(body.response_format).length);
    return tokens;
  }
  if (body.prompt !== undefined) return textTokens(promptChars(body.prompt));
  if (body.input !== undefined) return textTokens(promptChars(body.input));
  return 0;
}

/** The completion tokens a request may produce: its max_tokens, else `fallback`. */
export function requestedCompletionTokens(body: Record<string, unknown>, fallback: number): number {
  const value = body.max_completion_tokens ?? body.max_tokens;
  const n = typeof body.n === 'number' && body.n > 1 ? Math.floor(body.n) : 1;
  return (typeof value === 'number' && value >= 0 ? Math.floor(value) : fallback) * n;
}

/** Tokens to reserve before the call: estimated prompt + requested completion (none for embeddings). */
export function reservationTokens(body: Record<string, unknown>, fallbackCompletion: number): number {
  const prompt = estimatePromptTokens(body);
  if (body.input !== undefined && body.messages === undefined && body.prompt === undefined) return prompt;
  return prompt + requestedCompletionTokens(body, fallbackCompletion);
}

/** Completion budget assumed for latency prediction when a request sets no max_tokens. */
export const defaultCompletionBudget = 256;
