/**
 * Builds a non-streaming answer (chat.completion or text_completion) from the
 * chunks of an upstream stream. Used where the gateway streams from the
 * runtime for a non-streaming client, so that a client who leaves cancels the
 * generation at once (llama.cpp notices dropped non-streaming requests late).
 */

interface ToolCallDelta {
  index?: number;
  id?: string;
  type?: string;
  function?: { name?: string; arguments?: string };
}

interface ChunkChoice {
  index?: number;
  delta?: Record<string, unknown> & { role?: string; content?: string | null; tool_calls?: ToolCallDelta[] };
  text?: string;
  finish_reason?: string | null;
  logprobs?: { content?: unknown[] } | null;
}

interface Chunk {
  id?: string;
  object?: string;
  created?: number;
  model?: string;
  system_fingerprint?: string;
  choices?: ChunkChoice[];
  usage?: unknown;
  timings?: unknown;
}

interface ChoiceState {
  role: string;
  content: string | null;
  text: string;
  extra: Map<string, string>;
  toolCalls: Array<{ id: string; type: string; function: { name: string; arguments: string } }>;
  finishReason: string | null;
  logprobs: unknown[] | null;
}

/** Accumulates chunks; `result()` gives the JSON text of the whole answer. */
export class StreamAssembler {
  private readonly kind: 'chat' | 'completion';
  private readonly publicModel: string;
  private readonly choices = new Map<number, ChoiceState>();
  private head: Chunk = {};
  private usage: unknown;
  private timings: unknown;

  constructor(kind: 'chat' | 'completion', publicModel: string) {
    this.kind = kind;
    this.publicModel = publicModel;
  }

  private choice(index: number): ChoiceState {
    let state = this.choices.get(index);
    if (!state) {
      state = { role: 'assistant', content: null, text: '', extra: new Map(), toolCalls: [], finishReason: null, logprobs: null };
      this.choices.set(index, state);
    }
    return state;
  }

  /** Adds one `data:` payload (JSON text of a chunk). */
  add(data: string): void {
    const chunk = JSON.parse(data) as Chunk;
    if (this.head.id === undefined) this.head = chunk;
    if (chunk.usage) this.usage = chunk.usage;
    if (chunk.timings) this.timings = chunk.timings;
    if (chunk.system_fingerprint) this.head.system_fingerprint = chunk.system_fingerprint;
    for (const choice of chunk.choices ?? []) {
      const state = this.choice(choice.index ?? 0);
      if (choice.finish_reason) state.finishReason = choice.finish_reason;
      if (choice.logprobs?.content) {
        state.logprobs ??= [];
        state.logprobs.push(...choice.logprobs.content);
      }
      if (typeof choice.text === 'string') state.text += choice.text;
      const delta = choice.delta;
      if (!delta) continue;
      if (typeof delta.role === 'string') state.role = delta.role;
      if (typeof delta.content === 'string') state.content = (state.content ?? '') + delta.content;
      for (const [key, value] of Object.entries(delta)) {
        // reasoning_content / reasoning and other string extensions are concatenated like content
        if (key !== 'role' && key !== 'content' && key !== 'tool_calls' && typeof value === 'string') {
          state.extra.set(key, (state.extra.get(key) ?? '') + value);
        }
      }
      for (const call of delta.tool_calls ?? []) {
        const position = call.index ?? 0;
        state.toolCalls[position] ??= { id: '', type: 'function', function: { name: '', arguments: '' } };
        const target = state.toolCalls[position];
        if (call.id) target.id = call.id;
        if (call.type) target.type = call.type;
        if (call.function?.name) target.function.name += call.function.name;
        if (call.function?.arguments) target.function.arguments += call.function.arguments;
      }
    }
  }

  /** The assembled answer as JSON text. */
  result(): string {
    const indexes = [...this.choices.keys()].sort((left, right) => left - right);
    const choices = indexes.map((index) => {
      const state = this.choices.get(index) as ChoiceState;
      if (this.kind === 'completion') {
        return { index, text: state.text, logprobs: null, finish_reason: state.finishReason };
      }
      const message: Record<string, unknown> = { role: state.role, content: state.content };
      for (const [key, value] of state.extra) message[key] = value;
      const calls = state.toolCalls.filter(Boolean);
      if (calls.length > 0) message.tool_calls = calls;
      return { index, message, logprobs: state.logprobs ? { content: state.logprobs } : null, finish_reason: state.finishReason };
    });
    const body: Record<string, unknown> = {
      id: this.head.id ?? `chatcmpl-${Date.now()}`,
      object: this.kind === 'chat' ? 'chat.completion' : 'text_completion',
      created: this.head.created ?? Math.floor(Date.now() / 1000),
      model: this.publicModel,
      choices,
    };
    if (this.head.system_fingerprint) body.system_fingerprint = this.head.system_fingerprint;
    if (this.usage) body.usage = this.usage;
    if (this.timings) body.timings = this.timings;
    return JSON.stringify(body);
  }
}
