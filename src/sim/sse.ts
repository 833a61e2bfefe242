// Server-sent events framing shared by both flavours: each event is one
// `data: <json>` line followed by a blank line, and OpenAI-style streams end
// with a literal [DONE] event.

export const SSE_DONE = 'data: [DONE]\n\n';

/** Frames a value as one SSE data event. */
export function sseEvent(value: unknown): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}

/** Frames a value as one named SSE event (`event:` line + `data:` line), as the Responses and Messages streams are. */
export function sseNamedEvent(type: string, value: unknown): string {
  return `event: ${type}\ndata: ${JSON.stringify(value)}\n\n`;
}
