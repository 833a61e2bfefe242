/**
 * Server-sent events from an upstream, split into events as bytes arrive.
 * Events are kept as text: the relay edits a few bytes and passes them on.
 */

/** An upstream event (or a line without its end) grew past the bound the splitter was given. */
export class EventTooLargeError extends Error {
  readonly limit: number;
  constructor(limit: number) {
    super(`a stream event longer than ${limit} characters`);
    this.name = 'EventTooLargeError';
    this.limit = limit;
  }
}

/**
 * Splits an SSE text stream into complete events (without the blank line).
 * What waits for its end is bounded (`maxEventLength` characters): an
 * upstream sending an endless line fails fast instead of filling memory.
 */
export class SseSplitter {
  private pending = '';
  private readonly maxEventLength: number;

  constructor(maxEventLength = Number.POSITIVE_INFINITY) {
    this.maxEventLength = maxEventLength;
  }

  /** Adds text and returns the events it completed; throws EventTooLargeError past the bound. */
  push(text: string): string[] {
    let buffer = this.pending + (text.includes('\r') ? text.replace(/\r\n?/g, '\n') : text);
    const events: string[] = [];
    let boundary = buffer.indexOf('\n\n');
    while (boundary !== -1) {
      const event = buffer.slice(0, boundary);
      if (event.length > 0) events.push(event);
      buffer = buffer.slice(boundary + 2);
      boundary = buffer.indexOf('\n\n');
    }
    this.pending = buffer;
    if (buffer.length > this.maxEventLength) throw new EventTooLargeError(this.maxEventLength);
    return events;
  }

  /** Whatever arrived after the last complete event. */
  rest(): string {
    return this.pending;
  }
}

/** The payload of a single-line `data:` event, or undefined for other events. */
export function dataOf(event: string): string | undefined {
  if (!event.startsWith('data:')) return undefined;
  const newline = event.indexOf('\n');
  if (newline !== -1) {
    // Multi-line data: join the data lines as the SSE spec says.
    return event
      .split('\n')
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(line.charCodeAt(5) === 32 ? 6 : 5))
      .join('\n');
  }
  return event.slice(event.charCodeAt(5) === 32 ? 6 : 5);
}

/** True when a data payload is an error object rather than a chunk. */
export function isErrorPayload(data: string): boolean {
  return data.startsWith('{"error"') || (data.includes('"error"') && !data.includes('"choices"') && /^\{\s*"error"\s*:/.test(data));
}

/**
 * A named event (`event: <name>` then `data: …`, as Responses and Anthropic streams send them), split into the
 * lines before its data (kept as they are when the data is edited) and the data; undefined for events without
 * data (comments).
 */
export function namedEventData(event: string): { head: string; data: string } | undefined {
  if (event.startsWith('data:')) {
    const data = dataOf(event);
    return data === undefined ? undefined : { head: '', data };
  }
  const at = event.indexOf('\ndata:');
  if (at === -1) return undefined;
  const data = dataOf(event.slice(at + 1));
  return data === undefined ? undefined : { head: event.slice(0, at + 1), data };
}
