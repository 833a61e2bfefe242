/** What the response cache holds for one request: a whole non-streaming answer. */
import type { Usage } from '../wire/types.ts';
import { extractUsage } from '../wire/chunk-edit.ts';

/** A cached answer. */
export interface CacheEntry {
  /** What the body is, as the surface that stored it names it (`chat`, `embedding`, `responses-sse`, ...). */
  kind: string;
  /** The answer: JSON text of a non-streaming answer, or a stream's SSE text where the surface keeps that. */
  body: string;
  usage: Usage | undefined;
  /** Epoch ms when the answer was produced (for the `age` header). */
  createdAt: number;
}

interface SerialisedEntry {
  v: 1;
  kind: string;
  usage: Usage | null;
  createdAt: number;
  body: string;
}

const kindPattern = /^[a-z][a-z0-9-]{0,31}$/;

/** Serialises an entry for a store. */
export function serialiseEntry(entry: CacheEntry): string {
  const serialised: SerialisedEntry = { v: 1, kind: entry.kind, usage: entry.usage ?? null, createdAt: entry.createdAt, body: entry.body };
  return JSON.stringify(serialised);
}

/** Parses a stored entry; undefined when it is not one (old format, corrupt). */
export function parseEntry(text: string): CacheEntry | undefined {
  try {
    const raw = JSON.parse(text) as Partial<SerialisedEntry> | null;
    if (raw?.v !== 1 || typeof raw.body !== 'string' || typeof raw.createdAt !== 'number' || !kindPattern.test(String(raw.kind))) {
      return undefined;
    }
    return { kind: raw.kind as string, body: raw.body, usage: raw.usage ?? undefined, createdAt: raw.createdAt };
  } catch {
    return undefined;
  }
}

/** Size an entry takes in a store (UTF-8 bytes of its serialisation). */
export function entryBytes(entry: CacheEntry): number {
  return Buffer.byteLength(entry.body) + 200;
}

/** An entry from a complete non-streaming answer body (as sent to the client). */
export function entryFromResponse(kind: string, body: string, usage?: Usage, now: number = Date.now()): CacheEntry {
  return { kind, body, usage: usage ?? extractUsage(body), createdAt: now };
}

/** Seconds since the entry was made, for the `age` response header. */
export function entryAgeSeconds(entry: CacheEntry, now: number = Date.now()): number {
  return Math.max(0, Math.floor((now - entry.createdAt) / 1000));
}
