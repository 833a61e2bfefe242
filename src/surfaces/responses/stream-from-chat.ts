/**
 * Chat completion chunks -> Responses stream events, for /v1/responses streams translated onto
 * chat. One instance per stream; `push` takes one parsed chunk and returns the SSE text of the
 * events it causes (often one), so per-chunk work is one small object and one JSON.stringify per event.
 *
 * Event order (what the official SDKs' `responses.stream()` accumulator checks): response.created,
 * response.in_progress; per output item: response.output_item.added, then for a message
 * response.content_part.added + response.output_text.delta… + response.output_text.done +
 * response.content_part.done, for reasoning the same with a `reasoning_text` part and
 * response.reasoning_text.delta/done, for a function call response.function_call_arguments.delta…
 * + .done; response.output_item.done; finally response.completed or response.incomplete
 * (finish_reason `length`), or response.failed + error. Every event has a rising sequence_number.
 *
 * A reasoning or message item closes when output of another kind starts; function calls stay open
 * until the end (chat streams may interleave them by index). A tool call whose name has not come
 * yet is held back until it does, since its output_item.added must carry the name.
 */
import { ChatChunkTranslator } from '../chat-stream.ts';
import { isRecord, sseEvent, type JsonObject } from '../translate-common.ts';
import { itemIds, responseEnvelope, responsesUsageFromChat, responseStatus, type ResponsesContext } from './response-envelope.ts';

/** A reasoning or message item being streamed. */
interface TextItem {
  kind: 'reasoning' | 'message';
  id: string;
  outputIndex: number;
  text: string;
}

/** A function call item being streamed (or held until its name arrives: outputIndex -1). */
interface CallItem {
  id: string;
  callId: string;
  name: string;
  outputIndex: number;
  arguments: string;
}

export class ChatStreamToResponses extends ChatChunkTranslator {
  readonly #context: ResponsesContext;
  readonly #ids: { message: string; reasoning: string; functionCall: string };
  #sequence = 0;
  /** Final form of each output item, by output_index; filled as items close. */
  readonly #output: JsonObject[] = [];
  #current: TextItem | undefined;
  readonly #calls = new Map<number, CallItem>();
  #messages = 0;
  #reasonings = 0;
  #finishReason: unknown;

  constructor(context: ResponsesContext) {
    super();
    this.#context = context;
    this.#ids = itemIds(context.id);
  }

  #event(type: string, fields: JsonObject): string {
    return sseEvent(type, { type, sequence_number: this.#sequence++, ...fields });
  }

  /** response.created and response.in_progress. */
  override start(): string {
    if (this.started) return '';
    this.started = true;
    const response = responseEnvelope(this.#context, 'in_progress');
    return this.#event('response.created', { response }) + this.#event('response.in_progress', { response });
  }

  protected finished(choice: JsonObject): void {
    this.#finishReason = choice.finish_reason;
  }

  protected textDelta(delta: 'reasoning' | 'text', text: string): string {
    const kind = delta === 'text' ? 'message' : 'reasoning';
    let out = '';
    let item = this.#current;
    if (item?.kind !== kind) {
      out += this.#closeCurrent('completed');
      item = this.#openText(kind);
      out += this.#opened(item);
    }
    item.text += text;
    const fields: JsonObject = { item_id: item.id, output_index: item.outputIndex, content_index: 0, delta: text };
    if (kind === 'reasoning') return out + this.#event('response.reasoning_text.delta', fields);
    fields.logprobs = [];
    return out + this.#event('response.output_text.delta', fields);
  }

  #openText(kind: 'reasoning' | 'message'): TextItem {
    const count = kind === 'message' ? this.#messages++ : this.#reasonings++;
    const base = kind === 'message' ? this.#ids.message : this.#ids.reasoning;
    const item: TextItem = { kind, id: count === 0 ? base : `${base}_${count}`, outputIndex: this.#output.length, text: '' };
    this.#output.push({});
    this.#current = item;
    return item;
  }

  #opened(item: TextItem): string {
    const added =
      item.kind === 'message'
        ? { id: item.id, type: 'message', role: 'assistant', status: 'in_progress', content: [] }
        : { id: item.id, type: 'reasoning', summary: [], content: [], status: 'in_progress' };
    const part = item.kind === 'message' ? { type: 'output_text', text: '', annotations: [], logprobs: [] } : { type: 'reasoning_text', text: '' };
    return (
      this.#event('response.output_item.added', { output_index: item.outputIndex, item: added }) +
      this.#event('response.content_part.added', { item_id: item.id, output_index: item.outputIndex, content_index: 0, part })
    );
  }

  #finalText(item: TextItem, status: string): JsonObject {
    if (item.kind === 'message') {
      return { id: item.id, type: 'message', role: 'assistant', status, content: [{ type: 'output_text', text: item.text, annotations: [], logprobs: [] }] };
    }
    return { id: item.id, type: 'reasoning', summary: [], content: [{ type: 'reasoning_text', text: item.text }], status };
  }

  #closeCurrent(status: string): string {
    const item = this.#current;
    if (!item) return '';
    this.#current = undefined;
    const final = this.#finalText(item, status);
    this.#output[item.outputIndex] = final;
    const where = { item_id: item.id, output_index: item.outputIndex, content_index: 0 };
    const part = (final.content as JsonObject[])[0];
    const textDone =
      item.kind === 'message'
        ? this.#event('response.output_text.done', { ...where, text: item.text, logprobs: [] })
        : this.#event('response.reasoning_text.done', { ...where, text: item.text });
    return textDone + this.#event('response.content_part.done', { ...where, part }) + this.#event('response.output_item.done', { output_index: item.outputIndex, item: final });
  }

  protected callDelta(delta: JsonObject): string {
    const index = typeof delta.index === 'number' ? delta.index : 0;
    const fn = isRecord(delta.function) ? delta.function : {};
    const piece = typeof fn.arguments === 'string' ? fn.arguments : '';
    let call = this.#calls.get(index);
    if (!call) {
      call = { id: `${this.#ids.functionCall}_${index}`, callId: '', name: '', outputIndex: -1, arguments: '' };
      this.#calls.set(index, call);
    }
    if (call.outputIndex === -1) {
      // Held back until the name is known; id and name usually come in the first delta.
      if (typeof delta.id === 'string' && delta.id !== '') call.callId = delta.id;
      if (typeof fn.name === 'string') call.name += fn.name;
      call.arguments += piece;
      return call.name === '' ? '' : this.#openCall(call);
    }
    if (piece === '') return '';
    call.arguments += piece;
    return this.#event('response.function_call_arguments.delta', { item_id: call.id, output_index: call.outputIndex, delta: piece });
  }

  #openCall(call: CallItem): string {
    let out = this.#closeCurrent('completed');
    if (call.callId === '') call.callId = `call_${call.id.slice(3)}`;
    call.outputIndex = this.#output.length;
    this.#output.push({});
    out += this.#event('response.output_item.added', {
      output_index: call.outputIndex,
      item: { id: call.id, type: 'function_call', status: 'in_progress', call_id: call.callId, name: call.name, arguments: '' },
    });
    if (call.arguments !== '') {
      out += this.#event('response.function_call_arguments.delta', { item_id: call.id, output_index: call.outputIndex, delta: call.arguments });
    }
    return out;
  }

  #finalCall(call: CallItem, status: string): JsonObject {
    return { id: call.id, type: 'function_call', status, call_id: call.callId, name: call.name, arguments: call.arguments };
  }

  #closeCalls(status: string): string {
    let out = '';
    for (const call of this.#calls.values()) if (call.outputIndex === -1) out += this.#openCall(call);
    const open = [...this.#calls.values()].sort((left, right) => left.outputIndex - right.outputIndex);
    for (const call of open) {
      const final = this.#finalCall(call, status);
      this.#output[call.outputIndex] = final;
      out +=
        this.#event('response.function_call_arguments.done', { item_id: call.id, output_index: call.outputIndex, arguments: call.arguments }) +
        this.#event('response.output_item.done', { output_index: call.outputIndex, item: final });
    }
    this.#calls.clear();
    return out;
  }

  /** Closes every open item and ends with response.completed (or response.incomplete). */
  finish(): string {
    if (this.ended) return '';
    let out = this.started ? '' : this.start();
    this.ended = true;
    const { status, incomplete } = responseStatus(this.#finishReason);
    const itemStatus = status === 'completed' ? 'completed' : 'incomplete';
    out += this.#closeCurrent(itemStatus) + this.#closeCalls(itemStatus);
    const response = responseEnvelope(this.#context, status);
    response.incomplete_details = incomplete;
    response.output = this.#output;
    if (this.chatUsage) response.usage = responsesUsageFromChat(this.chatUsage);
    return out + this.#event(status === 'completed' ? 'response.completed' : 'response.incomplete', { response });
  }

  /**
   * Ends a started stream after an upstream failure: response.failed (with the output so far, marked
   * incomplete) then an `error` event, which the official SDKs raise to the caller.
   */
  fail(error: { message: string; code: string | null; type?: string }): string {
    if (this.ended) return '';
    this.ended = true;
    let out = '';
    if (this.started) {
      if (this.#current) this.#output[this.#current.outputIndex] = this.#finalText(this.#current, 'incomplete');
      for (const call of this.#calls.values()) if (call.outputIndex !== -1) this.#output[call.outputIndex] = this.#finalCall(call, 'incomplete');
      const response = responseEnvelope(this.#context, 'failed');
      response.error = { code: error.code === 'rate_limit_exceeded' ? error.code : 'server_error', message: error.message };
      response.output = this.#output;
      if (this.chatUsage) response.usage = responsesUsageFromChat(this.chatUsage);
      out += this.#event('response.failed', { response });
    }
    return out + this.#event('error', { code: error.code, message: error.message, param: null });
  }
}
