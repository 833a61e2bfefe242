/**
 * The guard on streams: the text deltas of an answer pass through per-choice
 * filters before the surface relays them — guard.restore puts the values a
 * request's redaction replaced back, guard.output replaces secrets — so a
 * stream gets what a JSON answer gets (guard/answer.ts).
 *
 * Text arrives in pieces, so each filter holds back a tail that could still
 * change: a placeholder (`[EMA`, `IL_`, `1]`) at most as long as the longest
 * one and only while it looks like one; for secrets, the last unfinished word
 * (keys and tokens have no spaces) and an open private-key block until its END
 * line, both bounded. The held text goes out with the next delta or when the
 * choice or content block ends.
 *
 * Three stream shapes are rewritten: chat completions and text completions
 * (also what a translated Responses or Messages stream is made from), and the
 * native Responses and Anthropic Messages streams of runtimes that serve them.
 */
import type { StreamDialect } from '../proxy/codec.ts';
import { restorePlaceholders } from './policy.ts';

/** A text arriving in pieces, changed on its way: what can go now, and the rest at the end. */
export interface TextFilter {
  push(piece: string): string;
  end(): string;
}

const possiblePrefix = /\[[A-Z0-9_]*$/;

/** Restores placeholders in a text that arrives in pieces. */
export class PlaceholderRestorer implements TextFilter {
  private held = '';
  private readonly values: ReadonlyMap<string, string>;
  private readonly longest: number;

  /** `values`: placeholder -> value as decoded text. */
  constructor(values: ReadonlyMap<string, string>) {
    this.values = values;
    this.longest = Math.max(...[...values.keys()].map((key) => key.length));
  }

  push(piece: string): string {
    const text = this.held + piece;
    const tail = possiblePrefix.exec(text.slice(-this.longest));
    const cut = tail ? text.length - tail[0].length : text.length;
    this.held = text.slice(cut);
    return this.restore(text.slice(0, cut));
  }

  end(): string {
    const rest = this.held;
    this.held = '';
    return this.restore(rest);
  }

  private restore(text: string): string {
    return restorePlaceholders(text, this.values);
  }
}

/** The longest unfinished word held back (a JWT is a few KiB); longer goes out scanned as it is. */
const MAX_HELD_WORD = 16 * 1024;
/** The longest open private-key block held back waiting for its END line; past it the block is replaced whole. */
const MAX_HELD_BLOCK = 64 * 1024;
const blockEnd = /-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY-----/;

/**
 * Replaces secrets (guard.output) in a text that arrives in pieces: `scan` replaces what it finds in a
 * complete stretch of text. Text goes out up to the last whitespace outside an open private-key block.
 */
export class SecretScrubber implements TextFilter {
  private held = '';
  /** Inside a private-key block too long to hold: dropped until its END line. */
  private swallowing = false;
  private readonly scan: (text: string) => string;

  constructor(scan: (text: string) => string) {
    this.scan = scan;
  }

  push(piece: string): string {
    let text = this.held + piece;
    let out = '';
    if (this.swallowing) {
      const end = blockEnd.exec(text);
      if (end === null) {
        this.held = text.slice(-64); // an END line split across pieces
        return '';
      }
      this.swallowing = false;
      text = text.slice(end.index + end[0].length);
    }
    const open = openBlock(text);
    let cut: number;
    if (open !== undefined) {
      if (text.length - open <= MAX_HELD_BLOCK) cut = open;
      else {
        // a block that does not end in time: replaced whole, the rest of it dropped until its END line
        out = `${this.scan(text.slice(0, open))}[PRIVATE_KEY_REDACTED]`;
        this.swallowing = true;
        this.held = text.slice(-64);
        return out;
      }
    } else {
      cut = lastSpace(text) + 1;
      if (text.length - cut > MAX_HELD_WORD) cut = text.length;
      // never between a block's BEGIN and the end of its END line (which has spaces in it)
      const closed = closedBlockEnd(text);
      if (closed > cut) cut = closed;
    }
    this.held = text.slice(cut);
    return cut === 0 ? '' : this.scan(text.slice(0, cut));
  }

  end(): string {
    const rest = this.held;
    this.held = '';
    if (this.swallowing) {
      this.swallowing = false;
      return '';
    }
    return rest.length === 0 ? '' : this.scan(rest);
  }
}

/** Where the END line of the last complete private-key block ends (0 when there is none). */
function closedBlockEnd(text: string): number {
  const last = text.lastIndexOf('-----END');
  if (last < 0) return 0;
  const end = blockEnd.exec(text.slice(last));
  return end === null || end.index !== 0 ? 0 : last + end[0].length;
}

const header = /^-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY-----/;

/**
 * Where the last private-key block without its END line starts, if one does: a full BEGIN line, or the start
 * of one still arriving (`-----BEGIN RSA PRI`).
 */
function openBlock(text: string): number | undefined {
  const last = text.lastIndexOf('-----BEGIN');
  if (last < 0) return undefined;
  const rest = text.slice(last);
  if (header.test(rest)) return blockEnd.test(rest) ? undefined : last;
  // still arriving: short, on one line, and only header characters so far
  return rest.length < 48 && /^-----BEGIN[A-Z0-9 -]*$/.test(rest) ? last : undefined;
}

function lastSpace(text: string): number {
  for (let index = text.length - 1; index >= 0; index--) {
    const code = text.charCodeAt(index);
    if (code === 32 || code === 10 || code === 9 || code === 13) return index;
  }
  return -1;
}

/** Two filters one after the other. */
export function chained(first: TextFilter, second: TextFilter): TextFilter {
  return {
    push: (piece) => second.push(first.push(piece)),
    end: () => second.push(first.end()) + second.end(),
  };
}

/** Which stream protocol the upstream speaks. */
export type StreamShape = 'chat' | 'responses' | 'messages';

interface ChatChunk {
  choices?: Array<{ index?: number; delta?: { content?: unknown }; text?: unknown; finish_reason?: unknown }>;
}

/** One SSE event split into the lines before its data, and the data. */
function dataOf(event: string): { head: string; data: string } | undefined {
  if (event.startsWith('data:')) return { head: '', data: event.slice(5).trimStart() };
  const at = event.indexOf('\ndata:');
  if (at < 0) return undefined;
  return { head: event.slice(0, at + 1), data: event.slice(at + 6).trimStart() };
}

function parsed<T>(data: string): T | undefined {
  if (!data.startsWith('{')) return undefined;
  try {
    return JSON.parse(data) as T;
  } catch {
    return undefined;
  }
}

/** `inner` reading an upstream stream of `shape` whose text deltas go through `filter(key)` first (one per choice or part). */
export function guardedStream(inner: StreamDialect, shape: StreamShape, filter: () => TextFilter): StreamDialect {
  const filters = new Map<string, TextFilter>();
  const filterFor = (key: string) => {
    let found = filters.get(key);
    if (found === undefined) {
      found = filter();
      filters.set(key, found);
    }
    return found;
  };
  const rewrite = shape === 'chat' ? chatRewriter(filterFor) : shape === 'responses' ? responsesRewriter(filterFor) : messagesRewriter(filterFor);
  return {
    read: (event) => {
      const events = rewrite(event);
      if (typeof events === 'string') return inner.read(events);
      let out = '';
      for (const one of events) {
        const step = inner.read(one);
        if (typeof step !== 'string') return step;
        out += step;
      }
      return out;
    },
    get done() {
      return inner.done;
    },
    fail: (error) => inner.fail(error),
    get usage() {
      return inner.usage;
    },
    get chunks() {
      return inner.chunks;
    },
  };
}

type Rewriter = (event: string) => string | string[];

/** Chat and text completion chunks: `choices[].delta.content` or `choices[].text`; a finish_reason flushes. */
function chatRewriter(filterFor: (key: string) => TextFilter): Rewriter {
  return (event) => {
    const split = dataOf(event);
    const chunk = split && parsed<ChatChunk>(split.data);
    if (!split || !chunk || !Array.isArray(chunk.choices) || chunk.choices.length === 0) return event;
    for (const choice of chunk.choices) {
      const key = String(typeof choice.index === 'number' ? choice.index : 0);
      const delta = choice.delta;
      const completion = delta === undefined && typeof choice.text === 'string';
      const piece = completion ? (choice.text as string) : delta && typeof delta.content === 'string' ? delta.content : undefined;
      let content = piece === undefined ? undefined : filterFor(key).push(piece);
      if (choice.finish_reason !== null && choice.finish_reason !== undefined) {
        const rest = filterFor(key).end();
        if (rest.length > 0) content = (content ?? '') + rest;
      }
      if (content === undefined) continue;
      if (completion) choice.text = content;
      else choice.delta = { ...(delta ?? {}), content };
    }
    return `${split.head}data: ${JSON.stringify(chunk)}`;
  };
}

interface ResponsesEvent {
  type?: string;
  sequence_number?: number;
  output_index?: number;
  content_index?: number;
  delta?: unknown;
  text?: unknown;
  part?: { type?: string; text?: unknown };
  item?: { content?: Array<{ type?: string; text?: unknown }> };
  response?: { output?: Array<{ content?: Array<{ type?: string; text?: unknown }> }> };
}

/**
 * Responses events: `response.output_text.delta` pieces go through the filter; at `response.output_text.done`
 * the held rest goes out as one more delta (later sequence numbers move up by one), and the full texts of the
 * done, content_part, output_item and completed events become what the deltas carried.
 */
function responsesRewriter(filterFor: (key: string) => TextFilter): Rewriter {
  const sent = new Map<string, string>();
  let shift = 0;
  const write = (split: { head: string }, body: ResponsesEvent) => {
    if (shift > 0 && typeof body.sequence_number === 'number') body.sequence_number += shift;
    return `${split.head}data: ${JSON.stringify(body)}`;
  };
  const textOf = (key: string, original: unknown) => sent.get(key) ?? original;
  return (event) => {
    const split = dataOf(event);
    const body = split && parsed<ResponsesEvent>(split.data);
    if (!split || !body) return event;
    const key = `${body.output_index ?? 0}:${body.content_index ?? 0}`;
    switch (body.type) {
      case 'response.output_text.delta': {
        if (typeof body.delta !== 'string') return event;
        body.delta = filterFor(key).push(body.delta);
        sent.set(key, (sent.get(key) ?? '') + body.delta);
        return write(split, body);
      }
      case 'response.output_text.done': {
        const rest = filterFor(key).end();
        const events: string[] = [];
        if (rest.length > 0) {
          sent.set(key, (sent.get(key) ?? '') + rest);
          const extra: ResponsesEvent = { type: 'response.output_text.delta', output_index: body.output_index ?? 0, content_index: body.content_index ?? 0, delta: rest };
          if ('item_id' in body) (extra as Record<string, unknown>).item_id = (body as Record<string, unknown>).item_id;
          if (typeof body.sequence_number === 'number') extra.sequence_number = body.sequence_number + shift;
          events.push(`${split.head.replace(/^event: .*$/m, 'event: response.output_text.delta')}data: ${JSON.stringify(extra)}`);
          shift++;
        }
        body.text = textOf(key, body.text);
        events.push(write(split, body));
        return events;
      }
      case 'response.content_part.done': {
        if (body.part?.type === 'output_text') body.part.text = textOf(key, body.part.text);
        return write(split, body);
      }
      case 'response.output_item.done': {
        body.item?.content?.forEach((part, index) => {
          if (part.type === 'output_text') part.text = textOf(`${body.output_index ?? 0}:${index}`, part.text);
        });
        return write(split, body);
      }
      case 'response.completed':
      case 'response.incomplete': {
        body.response?.output?.forEach((item, outputIndex) => {
          item.content?.forEach((part, index) => {
            if (part.type === 'output_text') part.text = textOf(`${outputIndex}:${index}`, part.text);
          });
        });
        return write(split, body);
      }
      default:
        return shift > 0 && typeof body.sequence_number === 'number' ? write(split, body) : event;
    }
  };
}

interface MessagesEvent {
  type?: string;
  index?: number;
  delta?: { type?: string; text?: unknown };
}

/** Anthropic Messages events: `text_delta` pieces go through the filter; the held rest goes out before `content_block_stop`. */
function messagesRewriter(filterFor: (key: string) => TextFilter): Rewriter {
  return (event) => {
    const split = dataOf(event);
    const body = split && parsed<MessagesEvent>(split.data);
    if (!split || !body) return event;
    const key = String(body.index ?? 0);
    if (body.type === 'content_block_delta' && body.delta?.type === 'text_delta' && typeof body.delta.text === 'string') {
      body.delta.text = filterFor(key).push(body.delta.text);
      return `${split.head}data: ${JSON.stringify(body)}`;
    }
    if (body.type === 'content_block_stop') {
      const rest = filterFor(key).end();
      if (rest.length === 0) return event;
      const extra = { type: 'content_block_delta', index: body.index ?? 0, delta: { type: 'text_delta', text: rest } };
      return [`${split.head.replace(/^event: .*$/m, 'event: content_block_delta')}data: ${JSON.stringify(extra)}`, event];
    }
    return event;
  };
}
