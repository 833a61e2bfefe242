/**
 * Answers sent before the request body was read (a 401 from onRequest, a 413
 * on the declared length, a 503 when the body budget is spent): the client may
 * still be sending. Closing at once makes its kernel reset the connection, and
 * clients that stream their body (Node fetch, the openai SDK) then see EPIPE
 * instead of the answer. Closing never would let a slow sender hold the
 * connection. So the rest of the body is read and discarded for a bounded time
 * and number of bytes (nginx's lingering close does the same), then the
 * connection is closed. A body that ends within the bounds leaves a reusable
 * keep-alive connection.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/** Most bytes of an unread body discarded after an early answer. */
export const lingerMaxBytes = 64 * 1024 * 1024;
/** Longest time an unread body is discarded after an early answer. */
export const lingerMaxMs = 10_000;

/** Sockets discarding a body after their answer: a later timeout on them must not write a second answer. */
export const lingering = new WeakSet<Socket>();

/** Reads and discards what is left of `request`'s body, within the bounds; the connection is closed past them. */
export function lingerOnUnreadBody(request: IncomingMessage, maxBytes = lingerMaxBytes, maxMs = lingerMaxMs): void {
  const socket = request.socket;
  if (request.complete || socket.destroyed) return;
  lingering.add(socket);
  let discarded = 0;
  const finish = (): void => {
    clearTimeout(timer);
    request.removeListener('data', onData);
    request.removeListener('end', finish);
    request.removeListener('close', finish);
    lingering.delete(socket);
  };
  const cut = (): void => {
    finish();
    socket.destroy();
  };
  const onData = (chunk: Buffer): void => {
    discarded += chunk.length;
    if (discarded > maxBytes) cut();
  };
  const timer = setTimeout(cut, maxMs);
  timer.unref();
  request.on('data', onData);
  request.once('end', finish);
  request.once('close', finish);
  // Node dumps (reads and drops) an unconsumed body once the answer is sent; a body reader that stopped early
  // left it flowing. Either way it flows: make sure it does.
  request.resume();
}
