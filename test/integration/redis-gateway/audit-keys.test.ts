/**
 * Key changes made with `switchyard keys` (a separate process, writing to Redis) land in the gateway's
 * tamper-evident audit log: the command queues the record in Redis and the gateway moves it into its chain.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import { adminQueueKey } from '../../../src/audit/admin-queue.ts';
import type { AuditRecord } from '../../../src/audit/record.ts';
import { validateConfig } from '../../../src/config/load.ts';
import { runKeysCommand } from '../../../src/limits/keys-command.ts';
import { startSim, startTestGateway, waitFor } from '../../helpers/gateway.ts';
import { startRedis } from '../../helpers/redis.ts';
import { redisSection, simBackend, simModel } from './harness.ts';

const directory = mkdtempSync(join(tmpdir(), 'swy-audit-keys-'));
const path = join(directory, 'audit.jsonl');
const hmacKey = 'an audit key of at least 32 characters!';
afterAll(() => rmSync(directory, { recursive: true, force: true }));

it('records keys created and revoked by the keys command in the hash chain, never the secret', { timeout: 30_000 }, async () => {
  const redis = await startRedis();
  const raw = new Redis(redis.url);
  const sim = await startSim({ flavor: 'vllm' });
  try {
    const config = {
      backends: [simBackend('sim', sim)],
      models: [simModel('chat', 'sim', sim)],
      redis: redisSection(redis.url),
      audit: { enabled: true, hmacKey, path, flushIntervalMs: 20 },
    };
    const gateway = await startTestGateway(config);
    const keys = (...argv: string[]) => runKeysCommand([...argv, '--config', 'inline'], () => validateConfig(config, 'inline', {}));
    const created = await keys('create', '--tenant', 'acme', '--id', 'ci-bot');
    const secret = /\n\n {2}(\S+)\n/.exec(created)?.[1] ?? '';
    expect(secret).not.toBe('');
    await keys('revoke', 'ci-bot');
    // The gateway drains the queue within a second.
    const actions = () =>
      readFileSync(path, 'utf8')
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as AuditRecord)
        .filter((record) => record.action?.startsWith('key.'));
    await waitFor(() => actions().length === 2, 5_000, 'both key actions in the audit log');
    expect(actions().map((record) => [record.action, record.keyId, record.tenant])).toEqual([
      ['key.create', 'ci-bot', 'acme'],
      ['key.revoke', 'ci-bot', 'acme'],
    ]);
    expect(actions()[0]?.detail).toMatch(/^keys command by /);
    expect(await raw.llen(adminQueueKey('swy'))).toBe(0);
    await gateway.close();
    const text = readFileSync(path, 'utf8');
    expect(text).not.toContain(secret);
    const verified = spawnSync(process.execPath, ['src/main.ts', 'audit', 'verify', path], { encoding: 'utf8', env: { ...process.env, SWITCHYARD_AUDIT_KEY: hmacKey } });
    expect(verified.status, verified.stdout + verified.stderr).toBe(0);
  } finally {
    raw.disconnect();
    await sim.close();
    await redis.stop();
  }
});
