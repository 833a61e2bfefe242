// Helpers shared by the fixture recorders (record-llamacpp-fixtures.ts and
// record-llamacpp-surfaces.ts): call a running server, keep what it answered, and
// store it under test/fixtures/llamacpp/ in the format the tests read.

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const OUT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/llamacpp');

export interface Req {
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  /** JSON body (serialised) or a raw string sent as-is. */
  json?: unknown;
  raw?: string;
}

export interface Recorded {
  request: Req;
  status: number;
  headers: Record<string, string>;
  body?: unknown;
  bodyText?: string;
}

export async function call(base: string, req: Req): Promise<Recorded> {
  const headers: Record<string, string> = { ...(req.headers ?? {}) };
  let body: string | undefined;
  if (req.json !== undefined) {
    body = JSON.stringify(req.json);
    headers['content-type'] ??= 'application/json';
  } else if (req.raw !== undefined) {
    body = req.raw;
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(base + req.path, { method: req.method, headers, body, signal: AbortSignal.timeout(60_000) });
  const text = await res.text();
  const hdrs: Record<string, string> = {};
  res.headers.forEach((v, k) => {
    hdrs[k] = v;
  });
  const rec: Recorded = { request: req, status: res.status, headers: hdrs };
  const ct = res.headers.get('content-type') ?? '';
  if (ct.includes('json')) {
    try {
      rec.body = JSON.parse(text);
    } catch {
      rec.bodyText = text;
    }
  } else {
    rec.bodyText = text;
  }
  return rec;
}

/** The cache path is machine-specific: fixtures say <cache> instead. */
let cachePrefix = '\u0000';
/** Sets the machine-specific cache folder that fixtures spell <cache>. */
export function setCachePrefix(prefix: string): void {
  cachePrefix = prefix;
}
function clean(text: string): string {
  return text.split(cachePrefix).join('<cache>');
}
export function write(name: string, text: string): void {
  writeFileSync(path.join(OUT, name), clean(text));
}

export function save(name: string, rec: Recorded): void {
  // long prompts would bloat the fixture: shorten them in the stored request
  const request = JSON.parse(JSON.stringify(rec.request, (_k, v: unknown) => (typeof v === 'string' && v.length > 300 ? `${v.slice(0, 60)}… [${v.length} chars]` : v))) as Req;
  write(`${name}.json`, `${JSON.stringify({ ...rec, request }, null, 2)}\n`);
  if (rec.headers['content-type']?.includes('text/event-stream') && rec.bodyText !== undefined) {
    write(`${name}.sse.txt`, rec.bodyText);
  }
  console.log(`  ${name}: ${rec.status} ${rec.headers['content-type'] ?? ''}`);
}
