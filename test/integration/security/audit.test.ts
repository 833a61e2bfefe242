/**
 * The audit log (issue 12 item 2) on a real gateway and simulator: one record per request (served, refused,
 * streamed) and per gateway start and shutdown, with tenant, key, surface, model, backend and zone, status,
 * tokens, cache and guard verdicts, and the SHA-256 of the request and answer bodies (a stream's bytes included) —
 * never their text; nothing lost on
 * shutdown; `switchyard audit verify` (the real CLI) passes on the file and names the line of an edit.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, expect, it } from 'vitest';
import type { AuditRecord } from '../../../src/audit/record.ts';
import { generateApiKey } from '../../../src/limits/api-keys.ts';
import { post, startSim, startTestGateway } from '../../helpers/gateway.ts';

const directory = mkdtempSync(join(tmpdir(), 'swy-audit-'));
const path = join(directory, 'audit.jsonl');
const hmacKey = 'an audit key of at least 32 characters!';
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function verify(...files: string[]) {
  return spawnSync(process.execPath, ['src/main.ts', 'audit', 'verify', ...files], { encoding: 'utf8', env: { ...process.env, SWITCHYARD_AUDIT_KEY: hmacKey } });
}

it('records every request and gateway action, loses nothing on shutdown, and verifies with the CLI', { timeout: 30_000 }, async () => {
  const sim = await startSim({ flavor: 'vllm' });
  const key = generateApiKey();
  const gateway = await startTestGateway({
    backends: [{ id: 'onprem', kind: 'vllm', url: sim.url, zone: 'onprem' }],
    zones: { onprem: { sensitive: true } },
    models: [{ name: 'chat', targets: [{ backend: 'onprem', model: sim.options.model }] }],
    auth: { mode: 'keys', keys: [{ id: 'app', hash: key.hash, tenant: 'acme' }] },
    guard: { enabled: true, actions: { email: 'redact' } },
    audit: { enabled: true, hmacKey, path, flushIntervalMs: 1_000 },
  });
  const client = new OpenAI({ apiKey: key.secret, baseURL: gateway.baseURL, maxRetries: 0 });
  const prompt = 'audit me, reply to secret.person@example.com';
  const body = JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: prompt }], max_tokens: 4 });
  const first = await post(`${gateway.url}/v1/chat/completions`, body, { 'content-type': 'application/json', authorization: `Bearer ${key.secret}` });
  expect(first.status).toBe(200);
  const stream = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'stream' }], max_tokens: 4, stream: true }).asResponse();
  const streamed = await stream.text(); // the SDK's own request, read as the bytes it received
  expect((await post(`${gateway.url}/v1/chat/completions`, body, { 'content-type': 'application/json' })).status).toBe(401);
  // Records are still queued (flushIntervalMs 1 s): shutdown must write them.
  await gateway.close();
  await sim.close();

  const text = readFileSync(path, 'utf8');
  expect(text).not.toContain('audit me');
  expect(text).not.toContain('secret.person');
  const records = text
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as AuditRecord);
  expect(records.map((record) => [record.type, record.action ?? record.status])).toEqual([
    ['admin', 'start'],
    ['request', 200],
    ['request', 200],
    ['request', 401],
    ['admin', 'shutdown'],
  ]);
  expect(records[1]).toMatchObject({
    tenant: 'acme',
    keyId: 'app',
    surface: 'chat',
    model: 'chat',
    backend: 'onprem',
    zone: 'onprem',
    guard: ['email:redact'],
    cache: 'bypass',
    requestSha256: createHash('sha256').update(body).digest('hex'),
    responseSha256: createHash('sha256').update(first.text).digest('hex'),
  });
  expect(records[2]?.responseSha256).toBe(createHash('sha256').update(streamed).digest('hex'));
  expect(streamed).toContain('data: [DONE]');
  expect(records[1]?.promptTokens).toBeGreaterThan(0);

  const good = verify(path);
  expect(good.status, good.stderr).toBe(0);
  expect(good.stdout).toContain('ok: 5 records in 1 files, chain intact');

  writeFileSync(path, text.replace('"status":401', '"status":200'));
  const bad = verify(path);
  expect(bad.status).toBe(1);
  expect(bad.stderr).toContain('edited');
  expect(bad.stderr).toContain('line 4 (seq 4)');
});
