/**
 * Audit records and their chain. Each record names the previous record's MAC
 * (`prev`) and carries its own: HMAC-SHA256 under `audit.hmacKey` (its UTF-8
 * bytes) over the record's canonical JSON without `mac` — fields in the fixed
 * order of `fieldOrder`, absent ones omitted — so the MAC does not depend on
 * how a caller built the object. Editing, removing, inserting or reordering a
 * record breaks a MAC or a link, and nobody without the key can forge a
 * record that fits. Records hold metadata and SHA-256 digests of bodies,
 * never their content.
 */
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';

export interface AuditFields {
  time: string;
  /** request: one per request; admin: a gateway action (start, shutdown); gap: records lost to a full buffer; restart: the chain resumed after a crash. */
  type: 'request' | 'admin' | 'gap' | 'restart';
  requestId?: string;
  tenant?: string;
  keyId?: string;
  surface?: string;
  model?: string;
  backend?: string;
  zone?: string;
  status?: number;
  promptTokens?: number;
  completionTokens?: number;
  cost?: number;
  cache?: string;
  guard?: string[];
  requestSha256?: string;
  /** SHA-256 of the answer body as sent to the client (stream events included). */
  responseSha256?: string;
  action?: string;
  detail?: string;
  /** For `gap`: how many records were lost. */
  lost?: number;
}

export interface AuditRecord extends AuditFields {
  seq: number;
  prev: string;
  mac: string;
}

/** `prev` of the very first record. */
export const genesis = '0'.repeat(64);

const fieldOrder = [
  'seq',
  'time',
  'type',
  'requestId',
  'tenant',
  'keyId',
  'surface',
  'model',
  'backend',
  'zone',
  'status',
  'promptTokens',
  'completionTokens',
  'cost',
  'cache',
  'guard',
  'requestSha256',
  'responseSha256',
  'action',
  'detail',
  'lost',
  'prev',
] as const;

/** The canonical text a record's MAC covers. */
export function canonical(record: Omit<AuditRecord, 'mac'>): string {
  let out = '{';
  for (const field of fieldOrder) {
    const value = (record as unknown as Record<string, unknown>)[field];
    if (value === undefined) continue;
    if (out.length > 1) out += ',';
    out += `${JSON.stringify(field)}:${JSON.stringify(value)}`;
  }
  return `${out}}`;
}

/** The HMAC key as a KeyObject, made once: HMAC with a KeyObject costs a fraction of one with a string or Buffer key. */
export function macKey(key: string): KeyObject {
  return createSecretKey(Buffer.from(key, 'utf8'));
}

export function macOf(key: KeyObject, record: Omit<AuditRecord, 'mac'>): string {
  return createHmac('sha256', key).update(canonical(record)).digest('hex');
}

/** The line written for a record: its canonical JSON with the MAC last. */
export function line(record: AuditRecord): string {
  const { mac, ...rest } = record;
  return `${canonical(rest).slice(0, -1)},"mac":${JSON.stringify(mac)}}\n`;
}

/** Seals records into one chain. */
export class AuditChain {
  private readonly key: KeyObject;
  prev: string;
  seq: number;

  constructor(key: string, prev = genesis, seq = 0) {
    this.key = macKey(key);
    this.prev = prev;
    this.seq = seq;
  }

  seal(fields: AuditFields): AuditRecord {
    const unsealed = { ...fields, seq: this.seq + 1, prev: this.prev };
    const record = { ...unsealed, mac: macOf(this.key, unsealed) };
    this.seq = record.seq;
    this.prev = record.mac;
    return record;
  }
}
