/**
 * guard.restore on streams: the values a request's redaction replaced go
 * back into the text deltas of the upstream's chat (or text completion)
 * stream before the surface relays or translates it, so a chat stream and a
 * Responses or Messages stream translated from chat get them back alike
 * (forward.ts serves a restored Responses or Messages stream through the
 * chat translation for this reason). A placeholder usually arrives in pieces
 * (`[EMA`, `IL_`, `1]`), so each choice holds back a tail that could still
 * become one — at most the longest placeholder, and only while it looks like
 * one — and releases it with the next delta or the choice's finish. Only
 * built when something was redacted.
 */
import type { StreamDialect } from '../proxy/codec.ts';
import { restorePlaceholders } from './policy.ts';

const possiblePrefix = /\[[A-Z0-9_]*$/;

/** Restores placeholders in a text that arrives in pieces. */
export class PlaceholderRestorer {
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

interface ChatChunk {
  choices?: Array<{ index?: number; delta?: { content?: unknown }; text?: unknown; finish_reason?: unknown }>;
}

/**
 * `inner` reading an upstream chat (or text completion) stream whose content deltas get the redacted values back
 * first. `placeholders`: as written in JSON text.
 */
export function restoringChatStream(inner: StreamDialect, placeholders: ReadonlyMap<string, string>): StreamDialect {
  const values = new Map([...placeholders].map(([placeholder, json]) => [placeholder, JSON.parse(`"${json}"`) as string]));
  const restorers = new Map<number, PlaceholderRestorer>();
  const restorer = (index: number) => {
    let found = restorers.get(index);
    if (found === undefined) {
      found = new PlaceholderRestorer(values);
      restorers.set(index, found);
    }
    return found;
  };
  const rewrite = (event: string): string => {
    if (!event.startsWith('data:')) return event;
    const payload = event.slice(5).trimStart();
    if (!payload.startsWith('{')) return event;
    let chunk: ChatChunk;
    try {
      chunk = JSON.parse(payload) as ChatChunk;
    } catch {
      return event;
    }
    if (!Array.isArray(chunk.choices) || chunk.choices.length === 0) return event;
    for (const choice of chunk.choices) {
      const index = typeof choice.index === 'number' ? choice.index : 0;
      const delta = choice.delta;
      // Chat: delta.content; text completions: text.
      const completion = delta === undefined && typeof choice.text === 'string';
      const piece = completion ? (choice.text as string) : delta && typeof delta.content === 'string' ? delta.content : undefined;
      let content = piece === undefined ? undefined : restorer(index).push(piece);
      if (choice.finish_reason !== null && choice.finish_reason !== undefined) {
        const rest = restorer(index).end();
        if (rest.length > 0) content = (content ?? '') + rest;
      }
      if (content === undefined) continue;
      if (completion) choice.text = content;
      else choice.delta = { ...(delta ?? {}), content };
    }
    return `data: ${JSON.stringify(chunk)}`;
  };
  return {
    read: (event) => inner.read(rewrite(event)),
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
