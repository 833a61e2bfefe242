import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditFileSink } from '../../../src/audit/file-sink.ts';
import { AuditChain, canonical, genesis } from '../../../src/audit/record.ts';
import { verifyFiles } from '../../../src/audit/verify.ts';

const key = 'k'.repeat(40);
const directories: string[] = [];
afterEach(() => {
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

function tempFile(): string {
  const directory = mkdtempSync(join(tmpdir(), 'swy-audit-'));
  directories.push(directory);
  return join(directory, 'audit.jsonl');
}

async function sinkWith(path: string, options: Partial<Parameters<typeof AuditFileSink.open>[0]> = {}) {
  return AuditFileSink.open({ path, key, maxBytes: 1 << 30, flushIntervalMs: 5, maxBufferedRecords: 10_000, ...options });
}

const request = (index: number) => ({ time: '2026-12-04T00:00:00.000Z', type: 'request' as const, requestId: `r${index}`, tenant: 'acme', status: 200, model: 'chat' });

async function fileOf(records: number): Promise<{ path: string; lines: string[] }> {
  const path = tempFile();
  const sink = await sinkWith(path);
  for (let index = 1; index <= records; index++) sink.write(request(index));
  await sink.close();
  return { path, lines: readFileSync(path, 'utf8').trimEnd().split('\n') };
}

describe('audit records', () => {
  it('serialise canonically, whatever order the fields were set in', () => {
    const a = canonical({ seq: 1, time: 't', type: 'request', status: 200, tenant: 'x', prev: genesis });
    const b = canonical({ prev: genesis, tenant: 'x', status: 200, type: 'request', time: 't', seq: 1 });
    expect(a).toBe(b);
    const chain = new AuditChain(key);
    const first = chain.seal(request(1));
    expect(first).toMatchObject({ seq: 1, prev: genesis });
    expect(chain.seal(request(2)).prev).toBe(first.mac);
  });
});

describe('audit file', () => {
  it('writes every record in batches and everything on close; verify passes', async () => {
    const { path, lines } = await fileOf(500);
    expect(lines).toHaveLength(500);
    expect(verifyFiles([path], key)).toMatchObject({ ok: true, records: 500 });
  });

  it('rotates past maxBytes and continues the chain across files', async () => {
    const path = tempFile();
    const sink = await sinkWith(path, { maxBytes: 4096 });
    for (let index = 1; index <= 200; index++) {
      sink.write(request(index));
      if (index % 20 === 0) await sink.flush();
    }
    await sink.close();
    const directory = join(path, '..');
    const rotated = readdirSync(directory)
      .filter((name) => name.startsWith('audit.jsonl.'))
      .sort()
      .map((name) => join(directory, name));
    expect(rotated.length).toBeGreaterThan(1);
    expect(verifyFiles([...rotated, path], key)).toMatchObject({ ok: true, records: 200 });
    // A rotated file missing from the middle is found.
    const gap = verifyFiles([rotated[0] as string, ...rotated.slice(2), path], key);
    expect(gap.error?.problem).toBe('deleted');
  });

  it('resumes the chain after a restart, and after a crash mid-write', async () => {
    const path = tempFile();
    let sink = await sinkWith(path);
    sink.write(request(1));
    await sink.close();
    sink = await sinkWith(path);
    sink.write(request(2));
    await sink.close();
    appendFileSync(path, '{"seq":3,"time":"2026'); // a torn line: the process died mid-write
    sink = await sinkWith(path);
    sink.write(request(3));
    await sink.close();
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    expect(lines.map((text) => (JSON.parse(text) as { type: string }).type)).toEqual(['request', 'request', 'restart', 'request']);
    expect(verifyFiles([path], key)).toMatchObject({ ok: true, records: 4 });
  });

  it('counts records lost to a full buffer in a gap record that verify reports, not as tampering', async () => {
    const path = tempFile();
    const sink = await sinkWith(path, { maxBufferedRecords: 10, flushIntervalMs: 1_000 });
    for (let index = 1; index <= 25; index++) sink.write(request(index));
    await sink.close();
    expect(sink.dropped).toBe(15);
    expect(verifyFiles([path], key)).toMatchObject({ ok: true, records: 11, gaps: 1, lost: 15 });
  });
});

describe('audit verify', () => {
  const tamper = async (edit: (lines: string[]) => string[]) => {
    const { path, lines } = await fileOf(6);
    writeFileSync(path, `${edit([...lines]).join('\n')}\n`);
    return verifyFiles([path], key).error;
  };

  it('finds an edited field', async () => {
    expect(await tamper((lines) => lines.map((text, index) => (index === 2 ? text.replace('"status":200', '"status":403') : text)))).toMatchObject({
      problem: 'edited',
      line: 3,
      seq: 3,
    });
  });
  it('finds a deleted record', async () => {
    expect(await tamper((lines) => lines.filter((_text, index) => index !== 3))).toMatchObject({ problem: 'deleted', line: 4, seq: 5 });
  });
  it('finds a forged record inserted by someone without the key', async () => {
    const forged = (text: string) => text.replace('"requestId":"r3"', '"requestId":"forged"').replace(/"mac":"[0-9a-f]+"/, `"mac":"${'ab'.repeat(32)}"`);
    expect(await tamper((lines) => [...lines.slice(0, 3), forged(lines[2] as string).replace('"seq":3', '"seq":4'), ...lines.slice(3)])).toMatchObject({
      problem: 'inserted',
      line: 4,
    });
  });
  it('finds a copy of a valid record', async () => {
    expect(await tamper((lines) => [...lines.slice(0, 4), lines[1] as string, ...lines.slice(4)])).toMatchObject({ problem: 'inserted', line: 5, seq: 2 });
  });
  it('finds two swapped records', async () => {
    expect(await tamper((lines) => [lines[0], lines[1], lines[3], lines[2], lines[4], lines[5]] as string[])).toMatchObject({ problem: 'reordered', line: 3, seq: 4 });
  });
  it('finds a malformed line', async () => {
    expect(await tamper((lines) => lines.map((text, index) => (index === 4 ? text.slice(0, 20) : text)))).toMatchObject({ problem: 'malformed', line: 5 });
  });
  it('refuses the wrong key at the first record', async () => {
    const { path } = await fileOf(3);
    expect(verifyFiles([path], 'x'.repeat(40)).error).toMatchObject({ problem: 'edited', line: 1 });
  });
});
