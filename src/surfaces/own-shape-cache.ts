/**
 * The cache of a surface whose answers the gateway cannot re-deliver the
 * other way (Responses, Anthropic Messages: no assembler from their event
 * streams, no replay into them): JSON answers and stream transcripts are
 * separate entries (the kind, and so the key, says which), and a hit is
 * served as it was sent, with the requester's model name put in.
 */
import { entryFromResponse, type CacheEntry } from '../cache/entry.ts';
import { rewriteModel } from '../wire/chunk-edit.ts';
import { namedEventData } from '../wire/sse.ts';
import type { Usage } from '../wire/types.ts';
import type { AnswerRecorder, RequestView, SurfaceCache } from './surface.ts';

/** An SSE transcript with every event's model name replaced. */
export function rewriteTranscriptModel(sse: string, publicJson: string): string {
  let out = '';
  for (const event of sse.split('\n\n')) {
    if (event.length === 0) continue;
    const split = namedEventData(event);
    out += split === undefined ? `${event}\n\n` : `${split.head}data: ${rewriteModel(split.data, publicJson)}\n\n`;
  }
  return out;
}

class OwnShapeRecorder implements AnswerRecorder {
  private body: string | undefined;
  private transcript = '';
  private tooLarge = false;
  private readonly kind: string;
  private readonly maxBytes: number;

  constructor(kind: string, maxBytes: number) {
    this.kind = kind;
    this.maxBytes = maxBytes;
  }

  json(body: string): void {
    this.body = body;
  }

  streamText(text: string): void {
    if (this.tooLarge) return;
    // Characters bound the bytes from below: stop at twice the limit, the entry check is exact.
    if (this.transcript.length + text.length > this.maxBytes * 2) {
      this.tooLarge = true;
      this.transcript = '';
      return;
    }
    this.transcript += text;
  }

  entry(usage: Usage | undefined): CacheEntry | undefined {
    const body = this.body ?? (this.tooLarge || this.transcript === '' ? undefined : this.transcript);
    if (body === undefined || Buffer.byteLength(body) > this.maxBytes) return undefined;
    return entryFromResponse(this.kind, body, usage);
  }
}

/** The cache of surface `name`: kinds `name` (JSON answers) and `name-sse` (stream transcripts). */
export function ownShapeCache(name: string): SurfaceCache {
  const kind = (view: RequestView) => (view.stream ? `${name}-sse` : name);
  return {
    kind,
    sampled: true,
    serve(entry, view) {
      const publicJson = JSON.stringify(view.model);
      return view.stream ? { sse: rewriteTranscriptModel(entry.body, publicJson) } : { json: rewriteModel(entry.body, publicJson) };
    },
    recorder: (view, maxBytes) => new OwnShapeRecorder(kind(view), maxBytes),
  };
}
