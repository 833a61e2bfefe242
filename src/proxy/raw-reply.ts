/**
 * Answers written straight on Node's response, past Fastify's send pipeline
 * (onSend hooks, payload checks). The hot path pays for none of it. This is
 * the only module that takes a response away from Fastify: it marks the
 * request's record, so the pipeline that wrote the answer reports it (with
 * its cost) and Fastify's onResponse leaves it alone.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyReply } from 'fastify';
import { guardedAnswer } from '../guard/answer.ts';

function takeOver(reply: FastifyReply): void {
  reply.hijack();
  reply.request.record.rawAnswer = true;
}

/** Takes the response over and writes its head: the headers set on the reply so far plus `headers`. */
export function writeRawHead(reply: FastifyReply, status: number, headers: OutgoingHttpHeaders): void {
  takeOver(reply);
  const out = reply.getHeaders(); // a fresh object: safe to add to
  for (const name in headers) out[name] = headers[name];
  reply.raw.writeHead(status, out as OutgoingHttpHeaders);
}

/** Sends a complete JSON answer. */
export function sendRawJson(reply: FastifyReply, headers: OutgoingHttpHeaders, answer: string, status = 200): void {
  // Every JSON answer leaves through here, so the guard's restore and output scan apply to all of them.
  const { guard, metrics } = reply.server.switchyard;
  const body = guard === undefined ? answer : guardedAnswer(guard, metrics, reply.request.record, answer);
  headers['content-type'] = 'application/json';
  headers['content-length'] = Buffer.byteLength(body);
  writeRawHead(reply, status, headers);
  reply.raw.end(body);
}

/** The client left before any answer: drop the connection, nothing is sent. */
export function abandon(reply: FastifyReply): void {
  takeOver(reply);
  if (!reply.raw.destroyed) reply.raw.destroy();
}
