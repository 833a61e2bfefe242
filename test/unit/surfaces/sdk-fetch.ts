/**
 * A `fetch` for the official SDK clients that answers every request with the given body, so a
 * translator's output is read by the SDK's own parsers and stream accumulators, not by our tests.
 */
export function answering(body: string, contentType: string, status = 200): { fetch: typeof fetch; requests: unknown[] } {
  const requests: unknown[] = [];
  const fake = async (_url: unknown, init?: { body?: unknown }): Promise<Response> => {
    requests.push(typeof init?.body === 'string' ? JSON.parse(init.body) : undefined);
    return new Response(body, { status, headers: { 'content-type': contentType } });
  };
  return { fetch: fake as typeof fetch, requests };
}

/** The SSE text as a list of `{event, data}` (data parsed). */
export function parseSse(text: string): Array<{ event: string; data: Record<string, unknown> }> {
  const events: Array<{ event: string; data: Record<string, unknown> }> = [];
  for (const block of text.split('\n\n')) {
    if (block.trim() === '') continue;
    let event = '';
    let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data += line.slice(6);
    }
    events.push({ event, data: JSON.parse(data) as Record<string, unknown> });
  }
  return events;
}
