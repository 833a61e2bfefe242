/**
 * Token estimates for reservations, before the backend has counted anything.
 * An ESTIMATE, not a tokenizer: about 4 characters per token for English
 * (fewer for code and other scripts), plus OpenAI's documented overhead of
 * 3-4 tokens per chat message. The token limiter settles every reservation
 * with the real usage afterwards, so errors here only shift who waits when.
 */
import type { ContextNeed } from '../routing/types.ts';

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
    else if (typeof item === 'number')
      chars += 4; // a token id
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

/** Completion budget assumed for latency and cost prediction when a request sets no max_tokens (never for the context check). */
export const defaultCompletionBudget = 256;

/**
 * Whitespace-separated words in `text`: a lower bound of its tokens. The tokenizers of the runtimes in front
 * of which the gateway runs never make one token of text from both sides of a whitespace: byte-level BPE
 * splits text with a pre-tokenizer first (GPT-2, cl100k/o200k, Llama 3, Qwen, DeepSeek: at most one leading
 * space joins a word) and SentencePiece splits by whitespace (Llama 2, Mistral, Gemma). Only ASCII whitespace
 * separates here, so unusual spaces can only merge words (fewer, still a lower bound).
 */
function wordCount(text: string): number {
  let words = 0;
  let inWord = false;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    const space = code === 32 || (code >= 9 && code <= 13);
    if (!space && !inWord) words++;
    inWord = !space;
  }
  return words;
}

function contentWords(content: unknown): number {
  if (typeof content === 'string') return wordCount(content);
  let words = 0;
  if (Array.isArray(content)) {
    for (const part of content) {
      if (typeof part === 'string') words += wordCount(part);
      else if (part && typeof part === 'object' && typeof (part as { text?: unknown }).text === 'string') words += wordCount((part as { text: string }).text);
    }
  }
  return words;
}

/** One sequence of a completions prompt or an embeddings input: text, or token ids (counted exactly). */
function sequenceFloor(item: unknown): number {
  if (typeof item === 'string') return wordCount(item);
  if (Array.isArray(item)) return item.length; // a list of token ids
  return 0;
}

/**
 * A lower bound of the prompt tokens of one sequence of the request, for refusing only what certainly cannot
 * fit a context window (routing/decide.ts): the chat messages' words (templates only add tokens; tools,
 * names and images are not counted, so nothing can over-count), or the longest prompt or input of a batch
 * (each is a sequence of its own), token-id lists counted exactly. Runs only when the estimate does not fit.
 */
export function promptTokenFloor(body: Readonly<Record<string, unknown>>): number {
  const messages = body.messages;
  if (Array.isArray(messages)) {
    let words = 0;
    for (const message of messages) if (message && typeof message === 'object') words += contentWords((message as { content?: unknown }).content);
    return words;
  }
  const prompt = body.prompt ?? body.input;
  if (typeof prompt === 'string') return wordCount(prompt);
  if (!Array.isArray(prompt)) return 0;
  if (prompt.length > 0 && prompt.every((item) => typeof item === 'number')) return prompt.length; // one list of token ids
  let longest = 0;
  for (const item of prompt) longest = Math.max(longest, sequenceFloor(item));
  return longest;
}

/** The client's own max_tokens (max_completion_tokens first) per choice, or undefined when it sent none. */
export function clientMaxTokens(body: Readonly<Record<string, unknown>>): number | undefined {
  const value = body.max_completion_tokens ?? body.max_tokens;
  return typeof value === 'number' && value >= 0 ? Math.floor(value) : undefined;
}

/**
 * What the context-window check counts for a request in OpenAI shape: generations need room for an answer
 * beyond the prompt (and the client's max_tokens where the runtime counts it), embeddings only the input.
 * The default completion budget the predictions assume is never counted: the client did not ask for it.
 */
export function contextNeed(body: Readonly<Record<string, unknown>>): ContextNeed {
  const generation = body.messages !== undefined || body.prompt !== undefined;
  return {
    promptFloor: () => promptTokenFloor(body),
    maxTokens: generation ? clientMaxTokens(body) : undefined,
    minOutput: generation ? 1 : 0,
  };
}
