/** Reading SSE bodies in tests (raw fetch responses). */

/** The `data:` payloads of an SSE body, in order; `[DONE]` stays a string, the rest is parsed. */
export function sseEvents(text: string): unknown[] {
  const events: unknown[] = [];
  for (const block of text.split('\n\n')) {
    const line = block.trim();
    if (!line.startsWith('data: ')) continue;
    const payload = line.slice(6);
    events.push(payload === '[DONE]' ? payload : JSON.parse(payload));
  }
  return events;
}

/** Reads a streamed body until `predicate` holds for the text so far; leaves the rest unread. */
export async function readUntil(response: Response, predicate: (text: string) => boolean): Promise<string> {
  const reader = response.body?.getReader();
  if (reader === undefined) return '';
  const decoder = new TextDecoder();
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text;
    text += decoder.decode(value, { stream: true });
    if (predicate(text)) {
      reader.releaseLock();
      return text;
    }
  }
}
