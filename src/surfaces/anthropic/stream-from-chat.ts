/**
 * Chat completion chunks -> Anthropic Messages stream events, for /v1/messages streams translated
 * onto chat. One instance per stream; `push` takes one parsed chunk and returns the SSE text of the
 * events it causes.
 *
 * Event order (what the official SDKs' MessageStream accumulates): message_start, ping; per content
 * block content_block_start, content_block_delta… (text_delta, thinking_delta then a closing
 * signature_delta, input_json_delta), content_block_stop; then message_delta (stop_reason,
 * stop_sequence, usage with the input tokens the chat stream reported at its end) and message_stop.
 * Anthropic blocks never overlap: a block closes when output of another kind (or another tool call)
 * starts. A tool call whose name has not come yet is held back until it does.
 */
import { ChatChunkTranslator } from '../chat-stream.ts';
import { isRecord, sseEvent, type JsonObject } from '../translate-common.ts';
import { anthropicErrorType } from './errors.ts';
import { messagesUsageFromChat, stopReason, type MessagesContext } from './message-from-chat.ts';

/** The block being streamed: thinking, text, or the tool call with this chat index. */
type OpenBlock = { kind: 'thinking' | 'text' } | { kind: 'tool'; chatIndex: number };

/** A tool call whose name has not arrived yet. */
interface HeldCall {
  id: string;
  name: string;
  arguments: string;
}

export class ChatStreamToMessages extends ChatChunkTranslator {
  readonly #context: MessagesContext;
  #blocks = 0;
  #open: OpenBlock | undefined;
  readonly #held = new Map<number, HeldCall>();
  /** Chat indexes of tool calls already given a block (their later argument pieces are appended to the open one only). */
  readonly #streamedCalls = new Set<number>();
  #toolCalls = false;
  #finishReason: unknown;
  #matchedStop: unknown;

  constructor(context: MessagesContext) {
    super();
    this.#context = context;
  }

  /** message_start (usage unknown until the chat stream ends: zero) and a first ping. */
  override start(): string {
    if (this.started) return '';
    this.started = true;
    const message = {
      id: this.#context.id,
      type: 'message',
      role: 'assistant',
      model: this.#context.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: 0, output_tokens: 0 },
    };
    return sseEvent('message_start', { type: 'message_start', message }) + this.ping();
  }

  /** A keep-alive event, as Anthropic sends during long generations. */
  ping(): string {
    return sseEvent('ping', { type: 'ping' });
  }

  protected finished(choice: JsonObject): void {
    this.#finishReason = choice.finish_reason;
    this.#matchedStop = choice.stop_reason ?? choice.matched_stop;
  }

  #blockStart(block: JsonObject): string {
    return sseEvent('content_block_start', { type: 'content_block_start', index: this.#blocks, content_block: block });
  }

  #delta(delta: JsonObject): string {
    return sseEvent('content_block_delta', { type: 'content_block_delta', index: this.#blocks, delta });
  }

  protected textDelta(kind: 'reasoning' | 'text', text: string): string {
    let out = '';
    if (this.#open?.kind !== (kind === 'text' ? 'text' : 'thinking')) {
      out += this.#close();
      this.#open = { kind: kind === 'text' ? 'text' : 'thinking' };
      out += this.#blockStart(kind === 'text' ? { type: 'text', text: '' } : { type: 'thinking', thinking: '', signature: '' });
    }
    return out + this.#delta(kind === 'text' ? { type: 'text_delta', text } : { type: 'thinking_delta', thinking: text });
  }

  protected callDelta(delta: JsonObject): string {
    const index = typeof delta.index === 'number' ? delta.index : 0;
    const fn = isRecord(delta.function) ? delta.function : {};
    const piece = typeof fn.arguments === 'string' ? fn.arguments : '';
    this.#toolCalls = true;
    const open = this.#open;
    if (open?.kind === 'tool' && open.chatIndex === index) {
      return piece === '' ? '' : this.#delta({ type: 'input_json_delta', partial_json: piece });
    }
    // A late piece of a call whose block has closed cannot be placed in the Anthropic stream.
    if (this.#streamedCalls.has(index)) return '';
    let held = this.#held.get(index);
    if (!held) {
      held = { id: '', name: '', arguments: '' };
      this.#held.set(index, held);
    }
    if (typeof delta.id === 'string' && delta.id !== '') held.id = delta.id;
    if (typeof fn.name === 'string') held.name += fn.name;
    held.arguments += piece;
    return held.name === '' ? '' : this.#openCall(index, held);
  }

  #openCall(index: number, held: HeldCall): string {
    this.#held.delete(index);
    this.#streamedCalls.add(index);
    let out = this.#close();
    this.#open = { kind: 'tool', chatIndex: index };
    const id = held.id === '' ? `toolu_${this.#context.id.slice(this.#context.id.indexOf('_') + 1)}_${index}` : held.id;
    out += this.#blockStart({ type: 'tool_use', id, name: held.name, input: {} });
    if (held.arguments !== '') out += this.#delta({ type: 'input_json_delta', partial_json: held.arguments });
    return out;
  }

  #close(): string {
    const open = this.#open;
    if (!open) return '';
    this.#open = undefined;
    // Anthropic closes a thinking block with its signature; a self-hosted model has none.
    const signature = open.kind === 'thinking' ? this.#delta({ type: 'signature_delta', signature: '' }) : '';
    const stop = sseEvent('content_block_stop', { type: 'content_block_stop', index: this.#blocks });
    this.#blocks++;
    return signature + stop;
  }

  /** Closes the open block and ends with message_delta (stop reason, usage) and message_stop. */
  finish(): string {
    if (this.ended) return '';
    let out = this.started ? '' : this.start();
    this.ended = true;
    out += this.#close();
    for (const [index, held] of this.#held) {
      out += this.#openCall(index, held) + this.#close();
    }
    const stop = stopReason(this.#finishReason, this.#matchedStop, this.#toolCalls);
    const usage = this.chatUsage ? messagesUsageFromChat(this.chatUsage) : { output_tokens: 0 };
    return (
      out +
      sseEvent('message_delta', { type: 'message_delta', delta: { stop_reason: stop.reason, stop_sequence: stop.sequence }, usage }) +
      sseEvent('message_stop', { type: 'message_stop' })
    );
  }

  /** Ends the stream after an upstream failure with Anthropic's `error` event, which the SDKs raise. */
  fail(error: { message: string; code: string | null; type?: string }): string {
    if (this.ended) return '';
    this.ended = true;
    const type = anthropicErrorType(undefined, error.type ?? 'server_error', error.code);
    return sseEvent('error', { type: 'error', error: { type, message: error.message } });
  }
}
