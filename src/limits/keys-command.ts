/**
 * `switchyard keys create|list|revoke|hash`: manages API keys in the Redis of
 * a config (or, without Redis, prints the `auth.keys` entry to paste). Returns
 * the text to print; main.ts prints it.
 */
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { type AdminAction, queueAdminAction } from '../audit/admin-queue.ts';
import type { SwitchyardConfig } from '../config/schema.ts';
import { closeRedis, connectRedis, createRedis } from '../redis/client.ts';
import { hashApiKey } from './api-keys.ts';
import { configEntryYaml, createKey, listKeys, revokeKey, type NewKeyFields } from './key-admin.ts';
import { MemoryKeyStore, RedisKeyStore, type KeyStore } from './key-store.ts';

export const keysUsage = `Usage:
  switchyard keys create --config FILE [--tenant T] [--models a,b-*] [--rpm N] [--tpm N]
                         [--budget AMOUNT/day|month] [--max-tokens N] [--zones a,b] [--id ID] [--name TEXT]
  switchyard keys list --config FILE
  switchyard keys revoke ID --config FILE
  switchyard keys hash SECRET           (the SHA-256 to put in auth.keys[].hash)
With redis in the config, keys live in Redis and every replica sees them at once.
Without it, create prints an auth.keys entry to paste into the config.`;

function positiveInteger(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0) throw new Error(`${flag} must be a whole number, got "${value}"`);
  return number;
}

function fieldsFrom(values: Record<string, string | undefined>): NewKeyFields {
  const fields: NewKeyFields = {};
  if (values.tenant) fields.tenant = values.tenant;
  if (values.name) fields.name = values.name;
  if (values.id) fields.id = values.id;
  if (values.models)
    fields.models = values.models
      .split(',')
      .map((model) => model.trim())
      .filter(Boolean);
  if (values.zones)
    fields.zones = values.zones
      .split(',')
      .map((zone) => zone.trim())
      .filter(Boolean);
  const rpm = positiveInteger(values.rpm, '--rpm');
  const tpm = positiveInteger(values.tpm, '--tpm');
  const cap = positiveInteger(values['max-tokens'], '--max-tokens');
  if (rpm !== undefined) fields.rpm = rpm;
  if (tpm !== undefined) fields.tpm = tpm;
  if (cap !== undefined) fields.maxTokensCap = cap;
  if (values.budget) {
    const match = /^(\d+(?:\.\d+)?)\/(day|month)$/.exec(values.budget);
    if (!match) throw new Error(`--budget must look like 25/month or 2.5/day, got "${values.budget}"`);
    fields.budget = { amount: Number(match[1]), period: match[2] as 'day' | 'month' };
  }
  return fields;
}

/** Runs a keys subcommand; `load` reads and validates the config file. */
/** Who ran the command, for the audit record (the OS account; not a secret). */
function userName(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

export async function runKeysCommand(argv: string[], load: (file: string) => SwitchyardConfig): Promise<string> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      tenant: { type: 'string' },
      models: { type: 'string' },
      rpm: { type: 'string' },
      tpm: { type: 'string' },
      budget: { type: 'string' },
      'max-tokens': { type: 'string' },
      zones: { type: 'string' },
      id: { type: 'string' },
      name: { type: 'string' },
    },
  });
  if (sub === 'hash') {
    const secret = positionals[0];
    if (!secret) throw new Error(keysUsage);
    return hashApiKey(secret);
  }
  if (sub !== 'create' && sub !== 'list' && sub !== 'revoke') throw new Error(keysUsage);
  if (!values.config) throw new Error(`--config FILE is required\n\n${keysUsage}`);
  const config = load(values.config);
  const logger = pino({ level: 'warn' });
  const redis = config.redis ? createRedis(config.redis, logger) : undefined;
  try {
    if (redis && !(await connectRedis(redis, config.redis?.startupWaitMs ?? 2_000))) throw new Error('Redis is not reachable: cannot manage keys');
    const store: KeyStore = redis ? new RedisKeyStore(redis, config.redis?.keyPrefix ?? 'swy') : new MemoryKeyStore([]);
    // With the audit log on, key changes go to the gateways' audit chain through Redis (audit/admin-queue.ts).
    const audited = async (action: AdminAction): Promise<void> => {
      if (redis && config.audit.enabled) await queueAdminAction(redis, config.redis?.keyPrefix ?? 'swy', { ...action, detail: `keys command by ${userName()}` });
    };
    if (sub === 'create') {
      const { secret, record } = await createKey(store, fieldsFrom(values));
      await audited({ action: 'key.create', keyId: record.id, tenant: record.tenant });
      const where = redis
        ? `Stored in Redis; every replica accepts it now.`
        : `No redis in ${values.config}: add this entry under auth.keys and restart:\n\n${configEntryYaml(record)}`;
      return `API key ${record.id} (tenant ${record.tenant}):\n\n  ${secret}\n\nThis secret is shown once and stored nowhere; only its hash is kept.\n${where}`;
    }
    if (sub === 'list') {
      const keys = redis
        ? await listKeys(store)
        : config.auth.keys.map((key) => ({ id: key.id ?? key.hash.slice(0, 16), tenant: key.tenant, models: key.models, revoked: key.revoked }));
      return JSON.stringify(keys, null, 2);
    }
    const id = positionals[0];
    if (!id) throw new Error(`revoke needs a key id\n\n${keysUsage}`);
    if (!redis) throw new Error(`No redis in ${values.config}: revoke a config key by setting revoked: true in auth.keys`);
    const revoked = await revokeKey(store, id);
    if (!revoked) throw new Error(`no key with id ${id}`);
    await audited({ action: 'key.revoke', keyId: id, tenant: revoked.tenant });
    return `Revoked ${id}. Replicas stop accepting it within auth.cacheTtlMs (${config.auth.cacheTtlMs} ms), or auth.maxStaleMs (${config.auth.maxStaleMs} ms) while Redis is unreachable.`;
  } finally {
    if (redis) await closeRedis(redis);
  }
}
