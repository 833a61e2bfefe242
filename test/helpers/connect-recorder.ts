/**
 * Preloaded into a gateway process (`node --import ./test/helpers/connect-recorder.ts`) by the air-gap test:
 * records every outbound connection attempt and every name lookup the process makes, one JSON line each, to
 * the file named by SWY_CONNECT_LOG. It hooks the lowest public layers every client goes through: TCP and
 * Unix-socket connects (net.Socket#connect, which tls, http, undici, fetch and ioredis all use), UDP sockets
 * (dgram), and name resolution (dns.lookup and the dns resolvers). Lines are appended synchronously so none is
 * lost when the process exits. It records only; it never blocks a connection.
 */
import dgram from 'node:dgram';
import dns from 'node:dns';
import { appendFileSync } from 'node:fs';
import net from 'node:net';

const file = process.env.SWY_CONNECT_LOG;
if (!file) throw new Error('connect-recorder: SWY_CONNECT_LOG is not set');

function record(entry: Record<string, unknown>): void {
  appendFileSync(file as string, `${JSON.stringify(entry)}\n`);
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function recordedConnect(this: net.Socket, ...args: unknown[]) {
  // connect(options[, cb]) | connect(port[, host][, cb]) | connect(path[, cb]); internally also connect([options, cb]).
  const first = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0];
  if (typeof first === 'object' && first !== null) {
    const options = first as { host?: string; port?: number | string; path?: string };
    record(options.path ? { type: 'unix', path: options.path } : { type: 'tcp', host: options.host ?? 'localhost', port: Number(options.port) });
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    record({ type: 'tcp', host: typeof args[1] === 'string' ? args[1] : 'localhost', port: Number(first) });
  } else if (typeof first === 'string') {
    record({ type: 'unix', path: first });
  }
  return (connect as (...rest: unknown[]) => net.Socket).apply(this, args);
} as typeof connect;

const lookup = dns.lookup;
dns.lookup = function recordedLookup(hostname: string, ...rest: unknown[]) {
  record({ type: 'lookup', host: hostname });
  return (lookup as (...all: unknown[]) => void)(hostname, ...rest);
} as typeof dns.lookup;
const promiseLookup = dns.promises.lookup;
dns.promises.lookup = function recordedPromiseLookup(hostname: string, ...rest: unknown[]) {
  record({ type: 'lookup', host: hostname });
  return (promiseLookup as (...all: unknown[]) => Promise<unknown>)(hostname, ...rest);
} as typeof dns.promises.lookup;
for (const method of ['resolve', 'resolve4', 'resolve6', 'resolveAny', 'resolveSrv', 'resolveTxt', 'reverse'] as const) {
  const original = dns[method] as (...all: unknown[]) => unknown;
  (dns as unknown as Record<string, unknown>)[method] = (name: unknown, ...rest: unknown[]) => {
    record({ type: 'resolve', method, host: name });
    return original(name, ...rest);
  };
}

const createSocket = dgram.createSocket;
dgram.createSocket = function recordedUdp(...args: unknown[]) {
  record({ type: 'udp' });
  return (createSocket as (...all: unknown[]) => dgram.Socket)(...args);
} as typeof dgram.createSocket;
