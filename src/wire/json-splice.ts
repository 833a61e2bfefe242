/**
 * Finds and replaces top-level members of a JSON object held as text, without
 * parsing or re-serialising the rest. Strings are skipped with indexOf, so the
 * cost grows with the number of structural tokens, not with prompt length; a
 * member the caller knows is there is usually found with indexOf alone.
 * Input must already be valid JSON (callers parse it once first, or trust the
 * upstream).
 */

/** Where one top-level member's value sits in the text: [start, end). */
export interface ValueSpan {
  start: number;
  end: number;
}

function skipWhitespace(text: string, index: number): number {
  let code = text.charCodeAt(index);
  while (code === 32 || code === 10 || code === 13 || code === 9) code = text.charCodeAt(++index);
  return index;
}

/**
 * `index` is at an opening quote; returns the index just past the closing one (the first `"` not escaped by an
 * odd number of backslashes), or -1 when the string never ends.
 */
export function stringEnd(text: string, index: number): number {
  let position = index + 1;
  for (;;) {
    const quote = text.indexOf('"', position);
    if (quote === -1) return -1;
    let backslashes = 0;
    for (let back = quote - 1; text.charCodeAt(back) === 92; back--) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    position = quote + 1;
  }
}

/** stringEnd for the valid JSON this module is given: an unterminated string runs to the end of the text. */
function skipString(text: string, index: number): number {
  const end = stringEnd(text, index);
  return end === -1 ? text.length : end;
}

function skipValue(text: string, index: number): number {
  const code = text.charCodeAt(index);
  if (code === 34) return skipString(text, index);
  if (code === 123 || code === 91) {
    let depth = 0;
    let position = index;
    while (position < text.length) {
      const current = text.charCodeAt(position);
      if (current === 34) {
        position = skipString(text, position);
        continue;
      }
      if (current === 123 || current === 91) depth++;
      else if (current === 125 || current === 93) {
        depth--;
        if (depth === 0) return position + 1;
      }
      position++;
    }
    return text.length;
  }
  let position = index;
  for (;;) {
    const current = text.charCodeAt(position);
    if (Number.isNaN(current) || current === 44 || current === 125 || current === 93 || current === 32 || current === 10 || current === 13 || current === 9) {
      return position;
    }
    position++;
  }
}

/**
 * Locates the values of the wanted top-level keys. Returns a map from key to
 * span; keys that are absent are missing from the map. Stops early once all
 * keys are found.
 */
export function findTopLevel(text: string, keys: readonly string[]): Map<string, ValueSpan> {
  const found = new Map<string, ValueSpan>();
  let index = skipWhitespace(text, 0);
  if (text.charCodeAt(index) !== 123) return found;
  index = skipWhitespace(text, index + 1);
  while (index < text.length && text.charCodeAt(index) === 34) {
    const keyEnd = skipString(text, index);
    const key = text.slice(index + 1, keyEnd - 1);
    index = skipWhitespace(text, keyEnd);
    index = skipWhitespace(text, index + 1); // past ':'
    const end = skipValue(text, index);
    if (keys.includes(key) && !found.has(key)) {
      found.set(key, { start: index, end });
      if (found.size === keys.length) return found;
    }
    index = skipWhitespace(text, end);
    if (text.charCodeAt(index) !== 44) break;
    index = skipWhitespace(text, index + 1);
  }
  return found;
}

/** Does the text write a printable ASCII character as `\u00XX` (`\u0020`–`\u007f`)? indexOf is far cheaper than a regex on long prompts. */
function escapesAscii(text: string): boolean {
  for (let at = text.indexOf('\\u00'); at !== -1; at = text.indexOf('\\u00', at + 4)) {
    const digit = text.charCodeAt(at + 4);
    if (digit >= 50 && digit <= 55) return true; // '2'..'7'
  }
  return false;
}

/** Every top-level member's value spans, duplicates included (a full scan of the object). */
function everyTopLevel(text: string): Map<string, ValueSpan[]> {
  const found = new Map<string, ValueSpan[]>();
  let index = skipWhitespace(text, 0);
  if (text.charCodeAt(index) !== 123) return found;
  index = skipWhitespace(text, index + 1);
  while (index < text.length && text.charCodeAt(index) === 34) {
    const keyEnd = skipString(text, index);
    const rawKey = text.slice(index + 1, keyEnd - 1);
    const key = rawKey.includes('\\') ? (JSON.parse(text.slice(index, keyEnd)) as string) : rawKey; // "mod\u0065l" is "model"
    index = skipWhitespace(text, keyEnd);
    index = skipWhitespace(text, index + 1); // past ':'
    const end = skipValue(text, index);
    const spans = found.get(key);
    if (spans) spans.push({ start: index, end });
    else found.set(key, [{ start: index, end }]);
    index = skipWhitespace(text, end);
    if (text.charCodeAt(index) !== 44) break;
    index = skipWhitespace(text, index + 1);
  }
  return found;
}

/**
 * The value of a key the caller knows is a top-level member (it parsed the
 * text), found with indexOf alone when `"key":` occurs exactly once: an
 * unescaped `"key"` in valid JSON is a whole string, and followed by a colon
 * it is a member name, so the only one must be the top-level member. Any
 * doubt (several, or one right after a backslash) returns undefined and the
 * caller scans properly.
 */
export function onlyMember(text: string, key: string): ValueSpan | undefined {
  const token = `"${key}"`;
  let colon = -1;
  for (let at = text.indexOf(token); at !== -1; at = text.indexOf(token, at + token.length)) {
    if (text.charCodeAt(at - 1) === 92) return undefined;
    const after = skipWhitespace(text, at + token.length);
    if (text.charCodeAt(after) !== 58) continue; // a string value, e.g. "role":"model"
    if (colon !== -1) return undefined;
    colon = after;
  }
  if (colon === -1) return undefined;
  const start = skipWhitespace(text, colon + 1);
  return { start, end: skipValue(text, start) };
}

/** One edit: replace a span, or insert a `"key":value` member when absent. */
export interface SpliceEdit {
  key: string;
  /** Serialised JSON value to put in place. */
  value: string;
  /** The caller parsed the text and knows `key` is a top-level member: allows a faster search. */
  present?: boolean;
}

/**
 * Applies member edits: existing members get their value replaced, missing ones
 * are inserted right after the opening brace.
 */
export function spliceTopLevel(text: string, edits: readonly SpliceEdit[]): string {
  if (edits.length === 0) return text;
  let spans: Map<string, ValueSpan[]> | undefined;
  // All edits become [start, end) → text pieces, applied in one pass: one copy of a long prompt, not one per edit.
  const pieces: Array<{ start: number; end: number; value: string }> = [];
  const inserts: string[] = [];
  // A printable ASCII character written as \u00XX could spell a second `model` key; ordinary clients escape only
  // control and non-ASCII characters, so such a body takes the full scan.
  const plain = !escapesAscii(text);
  for (const edit of edits) {
    const only = edit.present && plain ? onlyMember(text, edit.key) : undefined;
    if (only) {
      pieces.push({ start: only.start, end: only.end, value: edit.value });
      continue;
    }
    // A key written twice (`{"model":"a",…,"model":"b"}`) gets every occurrence replaced: the gateway read the
    // last (JSON.parse), a runtime might read either, and none may see a value the gateway did not choose.
    spans ??= everyTopLevel(text);
    const found = spans.get(edit.key);
    if (found) for (const span of found) pieces.push({ start: span.start, end: span.end, value: edit.value });
    else inserts.push(`${JSON.stringify(edit.key)}:${edit.value}`);
  }
  if (inserts.length > 0) {
    const open = text.indexOf('{') + 1;
    const empty = /^\s*\}/.test(text.slice(open, open + 64));
    pieces.push({ start: open, end: open, value: inserts.join(',') + (empty ? '' : ',') });
  }
  pieces.sort((left, right) => left.start - right.start);
  let out = '';
  let position = 0;
  for (const piece of pieces) {
    out += text.slice(position, piece.start) + piece.value;
    position = piece.end;
  }
  return out + text.slice(position);
}
