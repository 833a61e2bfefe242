/** Raw TCP conversations with a listening gateway: bytes exactly as written, paced as the test says. */
import { connect, type Socket } from 'node:net';

/** One raw connection: what it received, and when (if) the gateway closed it. */
export interface RawConnection {
  socket: Socket;
  /** Everything received so far. */
  received(): string;
  /** Resolves when the connection closes, with the ms since it opened. */
  closed: Promise<number>;
  /** Writes `pieces` one every `gapMs` until done or closed. */
  trickle(pieces: string[], gapMs: number): Promise<void>;
}

/** Opens a connection to `url`'s host and port. */
export async function openRaw(url: string): Promise<RawConnection> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const opened = performance.now();
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    text += chunk;
  });
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now() - opened)));
  return {
    socket,
    received: () => text,
    closed,
    async trickle(pieces, gapMs) {
      for (const piece of pieces) {
        if (socket.destroyed || socket.writableEnded) return;
        socket.write(piece);
        await new Promise((resolve) => setTimeout(resolve, gapMs));
      }
    },
  };
}

/** Splits raw HTTP/1.1 responses received on one connection (Content-Length framed). */
export function rawResponses(text: string): Array<{ status: number; headers: Record<string, string>; body: string }> {
  const responses: Array<{ status: number; headers: Record<string, string>; body: string }> = [];
  let rest = text;
  while (rest.startsWith('HTTP/1.1 ')) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const [statusLine, ...lines] = rest.slice(0, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    responses.push({ status: Number(statusLine?.split(' ')[1]), headers, body: rest.slice(end + 4, end + 4 + length) });
    rest = rest.slice(end + 4 + length);
  }
  return responses;
}
