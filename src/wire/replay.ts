/**
 * Replays a cached non-streaming answer as an SSE stream in the OpenAI chunk
 * format (what vLLM and llama.cpp send too): a role chunk, content (and
 * reasoning, refusal, tool-call) deltas in a few pieces, a finish chunk per
 * choice, the usage chunk (`choices: []`) when asked, then `data: [DONE]`.
 */
/** A complete non-streaming answer (a cache entry is one). */
export interface CompleteAnswer {
  /** `chat` or `completion` (the endpoints whose answers stream). */
  kind: string;
  /** JSON text of the answer. */
  body: string;
  usage: unknown;
  /** Epoch ms when it was produced. */
  createdAt: number;
}

/** How to replay. */
export interface ReplayOptions {
  /** Add the usage-only chunk (client sent `stream_options.include_usage`). */
  includeUsage: boolean;
  /** Model name to show (the name the client used). */
  publicModel: string;
  /** Upper bound of pieces one text is split into (default 4). */
  pieces?: number;
}

interface ToolCall {
  id?: string;
  type?: string;
  function?: { name?: string; arguments?: string };
}

interface ChatChoice {
  index?: number;
  message?: Record<string, unknown> & { role?: string; content?: string | null; tool_calls?: ToolCall[] };
  logprobs?: unknown;
  finish_reason?: string | null;
}

interface CompletionChoice {
  index?: number;
  text?: string;
  logprobs?: unknown;
  finish_reason?: string | null;
}

interface Answer {
  id?: string;
  created?: number;
  system_fingerprint?: string;
  choices?: Array<ChatChoice & CompletionChoice>;
  usage?: unknown;
}

/** Splits text into at most `pieces` parts of at least 16 characters, never inside a surrogate pair. */
export function splitText(text: string, pieces: number): string[] {
  if (text.length === 0) return [];
  const count = Math.max(1, Math.min(pieces, Math.floor(text.length / 16)));
  const size = Math.ceil(text.length / count);
  const parts: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(text.length, start + size);
    const code = text.charCodeAt(end - 1);
    if (end < text.length && code >= 0xd800 && code <= 0xdbff) end++;
    parts.push(text.slice(start, end));
    start = end;
  }
  return parts;
}

function event(payload: unknown): string {
  return `data: ${JSON.stringify(payload)}\n\n`;
}

/** The SSE text of the whole replayed stream. Embeddings cannot be streamed. */
export function replayAsSse(entry: CompleteAnswer, options: ReplayOptions): string {
  if (entry.kind !== 'chat' && entry.kind !== 'completion') throw new Error(`replayAsSse: ${entry.kind} answers are never streamed`);
  const answer = JSON.parse(entry.body) as Answer;
  const pieces = options.pieces ?? 4;
  const chat = entry.kind === 'chat';
  const head: Record<string, unknown> = {
    id: answer.id ?? `${chat ? 'chatcmpl' : 'cmpl'}-cached`,
    object: chat ? 'chat.completion.chunk' : 'text_completion',
    created: answer.created ?? Math.floor(entry.createdAt / 1000),
    model: options.publicModel,
  };
  if (answer.system_fingerprint) head.system_fingerprint = answer.system_fingerprint;
  const usageField = options.includeUsage ? { usage: null } : {};
  const chunk = (choice: Record<string, unknown>) => event({ ...head, choices: [choice], ...usageField });
  let out = '';
  for (const [position, choice] of (answer.choices ?? []).entries()) {
    const index = choice.index ?? position;
    if (!chat) {
      for (const text of splitText(choice.text ?? '', pieces)) out += chunk({ index, text, logprobs: null, finish_reason: null });
      out += chunk({ index, text: '', logprobs: choice.logprobs ?? null, finish_reason: choice.finish_reason ?? 'stop' });
      continue;
    }
    const message = choice.message ?? {};
    out += chunk({ index, delta: { role: message.role ?? 'assistant', content: '' }, logprobs: null, finish_reason: null });
    // Other string fields (reasoning_content, reasoning, refusal) stream before the content, as runtimes do.
    for (const [field, value] of Object.entries(message)) {
      if (field === 'role' || field === 'content' || typeof value !== 'string') continue;
      for (const text of splitText(value, pieces)) out += chunk({ index, delta: { [field]: text }, logprobs: null, finish_reason: null });
    }
    const contentPieces = splitText(typeof message.content === 'string' ? message.content : '', pieces);
    const logprobs = choice.logprobs ?? null;
    contentPieces.forEach((text, piece) => {
      out += chunk({ index, delta: { content: text }, logprobs: piece === 0 ? logprobs : null, finish_reason: null });
    });
    for (const [callIndex, call] of (message.tool_calls ?? []).entries()) {
      const start = { index: callIndex, id: call.id ?? `call_${callIndex}`, type: call.type ?? 'function', function: { name: call.function?.name ?? '', arguments: '' } };
      out += chunk({ index, delta: { tool_calls: [start] }, logprobs: null, finish_reason: null });
      for (const text of splitText(call.function?.arguments ?? '', pieces)) {
        out += chunk({ index, delta: { tool_calls: [{ index: callIndex, function: { arguments: text } }] }, logprobs: null, finish_reason: null });
      }
    }
    out += chunk({ index, delta: {}, logprobs: null, finish_reason: choice.finish_reason ?? 'stop' });
  }
  if (options.includeUsage) {
    out += event({ ...head, choices: [], usage: answer.usage ?? entry.usage ?? null });
  }
  return `${out}data: [DONE]\n\n`;
}
