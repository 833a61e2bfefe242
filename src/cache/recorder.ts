/**
 * Builds a cache entry from a relayed stream: feed it each `data:` payload
 * the relay sees, then ask for the entry. It parses every chunk (unlike the
 * relay itself), so create one only for requests that will be stored.
 */
import { StreamAssembler } from '../wire/assemble.ts';
import type { Usage } from '../wire/types.ts';
import { isErrorPayload } from '../wire/sse.ts';
import type { CacheEntry } from './entry.ts';

/** Collects a streamed answer into a CacheEntry. */
export class StreamCacheRecorder {
  private readonly assembler: StreamAssembler;
  private readonly kind: 'chat' | 'completion';
  private readonly maxBytes: number;
  private bytes = 0;
  private failed = false;
  private finished = false;

  /** `maxBytes`: stop collecting (and store nothing) past this many bytes of chunks. */
  constructor(kind: 'chat' | 'completion', publicModel: string, maxBytes: number) {
    this.kind = kind;
    this.assembler = new StreamAssembler(kind, publicModel);
    this.maxBytes = maxBytes;
  }

  /** Adds one `data:` payload (chunk JSON text, `[DONE]` or an error object). */
  add(data: string): void {
    if (this.failed) return;
    if (data === '[DONE]') {
      this.finished = true;
      return;
    }
    if (isErrorPayload(data)) {
      this.failed = true;
      return;
    }
    this.bytes += data.length;
    if (this.bytes > this.maxBytes * 2) {
      this.failed = true;
      return;
    }
    try {
      this.assembler.add(data);
    } catch {
      this.failed = true;
    }
  }

  /**
   * The entry, when the stream completed (`[DONE]` seen, no error) and every
   * choice has a finish reason; undefined otherwise (cancelled, failed, too big).
   * `usage`: the usage the relay captured, when the assembled body lacks it.
   */
  entry(usage?: Usage, now: number = Date.now()): CacheEntry | undefined {
    if (this.failed || !this.finished) return undefined;
    const body = this.assembler.result();
    const parsed = JSON.parse(body) as { choices?: Array<{ finish_reason?: string | null }>; usage?: Usage };
    const choices = parsed.choices ?? [];
    if (choices.length === 0 || choices.some((choice) => !choice.finish_reason)) return undefined;
    let text = body;
    if (!parsed.usage && usage) {
      parsed.usage = usage;
      text = JSON.stringify(parsed);
    }
    if (Buffer.byteLength(text) > this.maxBytes) return undefined;
    return { kind: this.kind, body: text, usage: parsed.usage ?? usage, createdAt: now };
  }
}
