/**
 * Answers written straight on Node's response, past Fastify's send pipeline
 * (onSend hooks, payload checks, the onResponse listener). The hot path pays
 * for none of it; the caller reports the request itself.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyReply } from 'fastify';

/** Takes the response over and writes its head: the headers set on the reply so far plus `headers`. */
export function writeRawHead(reply: FastifyReply, status: number, headers: OutgoingHttpHeaders): void {
  reply.hijack();
  const out = reply.getHeaders(); // a fresh object: safe to add to
  for (const name in headers) out[name] = headers[name];
  reply.raw.writeHead(status, out as OutgoingHttpHeaders);
}

/** Sends a complete JSON answer. */
export function sendRawJson(reply: FastifyReply, headers: OutgoingHttpHeaders, body: string): void {
  headers['content-type'] = 'application/json';
  headers['content-length'] = Buffer.byteLength(body);
  writeRawHead(reply, 200, headers);
  reply.raw.end(body);
}
