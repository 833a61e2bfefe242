/**
 * SHA-256 of an answer as the client receives it, for the audit log: the
 * response's write and end are wrapped so every body byte (a JSON answer, each
 * stream event, an error) feeds the hash on its way out, whichever code path
 * wrote it. Only installed when the audit log is on. Bytes written after the
 * digest was taken (none are expected) are left out rather than failing.
 */
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';

export interface AnswerDigest {
  /** Hex SHA-256 of what was written so far; the first call closes the hash. */
  digest(): string;
}

export function digestAnswer(response: ServerResponse): AnswerDigest {
  const hash = createHash('sha256');
  let value: string | undefined;
  const feed = (chunk: unknown) => {
    if (value === undefined && (typeof chunk === 'string' || chunk instanceof Uint8Array)) hash.update(chunk);
  };
  const write = response.write;
  const end = response.end;
  response.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    feed(chunk);
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as ServerResponse['write'];
  response.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    feed(chunk);
    return (end as (...args: unknown[]) => ServerResponse).call(this, chunk, ...rest);
  } as ServerResponse['end'];
  return {
    digest() {
      value ??= hash.digest('hex');
      return value;
    },
  };
}
