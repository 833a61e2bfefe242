/** What `switchyard keys create|list|revoke` does. */
import { randomBytes } from 'node:crypto';
import type { KeyRecord } from './api-keys.ts';
import { generateApiKey } from './api-keys.ts';
import type { Budget } from './config.ts';
import type { KeyStore } from './key-store.ts';

/** Fields a new key may carry. */
export interface NewKeyFields {
  tenant?: string;
  name?: string;
  /** Default `['*']`. */
  models?: string[];
  rpm?: number;
  tpm?: number;
  budget?: Budget;
  maxTokensCap?: number;
  /** Data zones the key's requests may reach. */
  zones?: string[];
  /** Default: `key_` + 16 random hex digits. */
  id?: string;
}

/** Creates a key; the secret is returned once and never stored. */
export async function createKey(store: KeyStore, fields: NewKeyFields = {}, now = new Date()): Promise<{ secret: string; record: KeyRecord }> {
  const { secret, hash } = generateApiKey();
  const id = fields.id ?? `key_${randomBytes(8).toString('hex')}`;
  if ((await store.list()).some((record) => record.id === id)) throw new Error(`a key with id ${id} exists already`);
  const record: KeyRecord = { id, hash, tenant: fields.tenant ?? 'default', models: fields.models ?? ['*'], createdAt: now.toISOString() };
  if (fields.name !== undefined) record.name = fields.name;
  if (fields.rpm !== undefined) record.rpm = fields.rpm;
  if (fields.tpm !== undefined) record.tpm = fields.tpm;
  if (fields.budget !== undefined) record.budget = fields.budget;
  if (fields.maxTokensCap !== undefined) record.maxTokensCap = fields.maxTokensCap;
  if (fields.zones !== undefined) record.zones = fields.zones;
  await store.put(record);
  return { secret, record };
}

/** What `keys list` shows of a record: everything but the hash. */
export type KeySummary = Omit<KeyRecord, 'hash'>;

/** Every key, without hashes, sorted by creation time. */
export async function listKeys(store: KeyStore): Promise<KeySummary[]> {
  const records = await store.list();
  return records.map(({ hash: _hash, ...summary }) => summary).sort((left, right) => left.createdAt.localeCompare(right.createdAt) || left.id.localeCompare(right.id));
}

/** Marks the key revoked; undefined when there is no key with that id. */
export async function revokeKey(store: KeyStore, id: string): Promise<KeyRecord | undefined> {
  const record = (await store.list()).find((candidate) => candidate.id === id);
  if (!record) return undefined;
  const revoked: KeyRecord = { ...record, revoked: true };
  await store.put(revoked);
  return revoked;
}

/** The `auth.keys` YAML entry for a record (for configs without Redis). */
export function configEntryYaml(record: KeyRecord): string {
  const lines = [`- id: ${record.id}`, `  hash: ${record.hash}`, `  tenant: ${JSON.stringify(record.tenant)}`, `  models: ${JSON.stringify(record.models)}`];
  if (record.rpm !== undefined) lines.push(`  rpm: ${record.rpm}`);
  if (record.tpm !== undefined) lines.push(`  tpm: ${record.tpm}`);
  if (record.budget) lines.push(`  budget: { amount: ${record.budget.amount}, period: ${record.budget.period} }`);
  if (record.maxTokensCap !== undefined) lines.push(`  maxTokensCap: ${record.maxTokensCap}`);
  if (record.zones !== undefined) lines.push(`  zones: [${record.zones.join(', ')}]`);
  return `${lines.join('\n')}\n`;
}
