/**
 * What the chat-stream translators (Responses and Anthropic Messages streams made from chat chunks)
 * share: the walk over one chat.completion.chunk, the usage bookkeeping, and the started/ended state.
 * A subclass turns the pieces into its own events: reasoning and text deltas, tool-call pieces, and
 * the finish reason; `push` returns the SSE text they produce.
 *
 * Usage: the upstream's usage chunk wins; before (or without) one, llama.cpp's per-chunk `timings`
 * stand in, so a stream cut short still meters what was generated.
 */
import type { Usage } from '../wire/types.ts';
import { chatUsage, firstChoice, isRecord, meteringUsage, reasoningText, type ChatUsage, type JsonObject } from './translate-common.ts';

export abstract class ChatChunkTranslator {
  protected started = false;
  protected ended = false;
  #usage: ChatUsage | undefined;
  #usageFromChunk = false;

  /** Usage seen so far, in the chat shape with its extra fields (cached and reasoning tokens). */
  protected get chatUsage(): ChatUsage | undefined {
    return this.#usage;
  }

  /** Usage seen so far, for metering. */
  get usage(): Usage | undefined {
    return this.#usage ? meteringUsage(this.#usage) : undefined;
  }

  /** The events that open the stream; '' once started. */
  abstract start(): string;

  /** Events for a piece of reasoning (`reasoning`) or answer text (`text`). */
  protected abstract textDelta(kind: 'reasoning' | 'text', text: string): string;

  /** Events for one entry of a delta's `tool_calls`. */
  protected abstract callDelta(call: JsonObject): string;

  /** Records the choice that carries a finish_reason. */
  protected abstract finished(choice: JsonObject): void;

  /** The events one parsed chat.completion.chunk causes. */
  push(chunk: JsonObject): string {
    if (this.ended) return '';
    let out = this.started ? '' : this.start();
    if (isRecord(chunk.usage)) {
      this.#usage = chatUsage(chunk);
      this.#usageFromChunk = true;
    } else if (!this.#usageFromChunk && chunk.timings !== undefined) {
      this.#usage = chatUsage(chunk) ?? this.#usage;
    }
    const choice = firstChoice(chunk);
    if (!choice) return out;
    const delta = choice.delta;
    if (isRecord(delta)) {
      const reasoning = reasoningText(delta);
      if (reasoning !== undefined) out += this.textDelta('reasoning', reasoning);
      const content = delta.content;
      if (typeof content === 'string' && content !== '') out += this.textDelta('text', content);
      const toolCalls = delta.tool_calls;
      if (Array.isArray(toolCalls)) for (const call of toolCalls) if (isRecord(call)) out += this.callDelta(call);
    }
    if (typeof choice.finish_reason === 'string') this.finished(choice);
    return out;
  }
}
