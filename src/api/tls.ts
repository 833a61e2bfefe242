/**
 * TLS on the gateway's own listener (`server.tls`) and client certificates:
 * with `clientCaFile`, Node verifies a client's certificate against that CA
 * during the handshake (`clientCert: required` refuses a handshake without a
 * valid one); a verified certificate whose subject CN is listed in
 * `server.tls.clients` identifies its holder — tenant, allowed models, zones —
 * as an API key would, so services with certificates need no shared secret.
 * Read once per connection, never per request.
 */
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { SwitchyardConfig } from '../config/schema.ts';
import type { KeyRecord } from '../limits/api-keys.ts';

type TlsConfig = NonNullable<SwitchyardConfig['server']['tls']>;

function read(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new Error(`server.tls.${what}: cannot read ${file}: ${(error as Error).message}`);
  }
}

/** The options for https.createServer (with the listener options Node shares with http). */
export function httpsOptions<T extends object>(tls: TlsConfig, listener: T): T & { key: Buffer; cert: Buffer; ca?: Buffer; requestCert: boolean; rejectUnauthorized: boolean } {
  const mutual = tls.clientCaFile !== undefined;
  return {
    ...listener,
    key: read(tls.keyFile, 'keyFile'),
    cert: read(tls.certFile, 'certFile'),
    ...(mutual ? { ca: read(tls.clientCaFile as string, 'clientCaFile') } : {}),
    requestCert: mutual,
    rejectUnauthorized: mutual && tls.clientCert === 'required',
  };
}

/**
 * The identity of the connection's verified client certificate, or undefined
 * (no TLS, no certificate, not verified by the client CA, or a subject not
 * listed). Undefined when mutual TLS is off, so plain listeners pay nothing.
 */
export function certificateIdentity(tls: TlsConfig | undefined): ((socket: Socket) => KeyRecord | undefined) | undefined {
  if (tls?.clientCaFile === undefined || tls.clients === undefined || Object.keys(tls.clients).length === 0) return undefined;
  const records = new Map<string, KeyRecord>();
  for (const [subject, client] of Object.entries(tls.clients)) {
    const record: KeyRecord = { id: `cert:${subject}`, hash: '', tenant: client.tenant, models: client.models ?? ['*'], createdAt: new Date(0).toISOString() };
    if (client.zones) record.zones = client.zones;
    records.set(subject, record);
  }
  const bySocket = new WeakMap<Socket, KeyRecord | null>();
  return (socket) => {
    let record = bySocket.get(socket);
    if (record === undefined) {
      const tlsSocket = socket as TLSSocket;
      const subject = tlsSocket.authorized === true ? tlsSocket.getPeerCertificate().subject?.CN : undefined;
      record = (typeof subject === 'string' ? records.get(subject) : undefined) ?? null;
      bySocket.set(socket, record);
    }
    return record ?? undefined;
  };
}
