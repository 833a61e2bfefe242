/**
 * `switchyard audit verify FILE...`: checks one chain across the files given
 * in order (rotated files first) and reports the first problem:
 *   malformed   a line that is not a record;
 *   edited      a record whose MAC does not match its content, at the seq expected
 *               (unless the genuine record with that seq follows: then inserted);
 *   inserted    a record that does not belong: a MAC that does not match at another
 *               seq (forged without the key) or a valid record seen before (a copy);
 *   deleted     a valid record whose seq jumps ahead and no later line has the
 *               missing seq (records, or a whole rotated file, removed);
 *   reordered   as deleted, but the missing seq appears further on;
 *   bad-start   the first record does not start a chain (seq 1 after genesis) and
 *               no earlier file was given.
 * `gap` records (lost to a full buffer) and `restart` records are honest
 * and counted, not errors.
 */
import { readFileSync } from 'node:fs';
import { type AuditRecord, genesis, macKey, macOf } from './record.ts';

export type AuditProblem = 'malformed' | 'edited' | 'inserted' | 'deleted' | 'reordered' | 'bad-start';

export interface VerifyResult {
  ok: boolean;
  records: number;
  files: number;
  gaps: number;
  lost: number;
  error?: { file: string; line: number; seq?: number; problem: AuditProblem; message: string };
}

function withoutMac(record: AuditRecord): Omit<AuditRecord, 'mac'> {
  const { mac: _mac, ...rest } = record;
  return rest;
}

export function verifyFiles(paths: readonly string[], secret: string): VerifyResult {
  const key = macKey(secret);
  let prev: string | undefined;
  let expected = 1;
  let records = 0;
  let gaps = 0;
  let lost = 0;
  const seen = new Set<string>();
  for (const file of paths) {
    const lines = readFileSync(file, 'utf8').split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    const parsed: Array<AuditRecord | undefined> = lines.map((text) => {
      try {
        const value = JSON.parse(text) as AuditRecord;
        return typeof value === 'object' && value !== null && typeof value.seq === 'number' && typeof value.mac === 'string' && typeof value.prev === 'string' ? value : undefined;
      } catch {
        return undefined;
      }
    });
    for (const [index, record] of parsed.entries()) {
      const fail = (problem: AuditProblem, message: string, seq?: number): VerifyResult => ({
        ok: false,
        records,
        files: paths.length,
        gaps,
        lost,
        error: { file, line: index + 1, ...(seq === undefined ? {} : { seq }), problem, message },
      });
      if (!record) return fail('malformed', 'not an audit record');
      const { mac, ...rest } = record;
      const valid = macOf(key, rest) === mac;
      if (prev === undefined) {
        if (!valid) return fail('edited', 'the first record does not match its MAC (edited, or the wrong key)', record.seq);
        if (record.prev !== genesis && index === 0 && file === paths[0]) {
          // A rotated-onto file verified alone: accept its start as given.
          prev = record.prev;
          expected = record.seq;
        } else if (record.seq !== 1) return fail('bad-start', `the chain starts at seq ${record.seq}, not 1`, record.seq);
      }
      if (!valid) {
        // At the expected seq an invalid MAC is an edit, unless the genuine record follows it (an insertion).
        const next = parsed[index + 1];
        const genuineNext = next !== undefined && next.seq === record.seq && next.prev === (prev ?? genesis) && macOf(key, withoutMac(next)) === next.mac;
        return record.seq === expected && !genuineNext
          ? fail('edited', `record ${record.seq} does not match its MAC: its content was changed`, record.seq)
          : fail('inserted', `a record that does not belong (seq ${record.seq}, MAC invalid) where ${expected} was expected`, record.seq);
      }
      if (seen.has(mac)) return fail('inserted', `record ${record.seq} appears twice (a copy of an earlier record)`, record.seq);
      if (record.seq !== expected || record.prev !== (prev ?? genesis)) {
        if (record.seq > expected) {
          const later = parsed.slice(index + 1).some((other) => other?.seq === expected);
          return later
            ? fail('reordered', `record ${record.seq} comes before record ${expected}`, record.seq)
            : fail('deleted', `records ${expected}${record.seq - 1 > expected ? `-${record.seq - 1}` : ''} are missing before record ${record.seq}`, record.seq);
        }
        return fail('reordered', `record ${record.seq} comes after record ${expected - 1}`, record.seq);
      }
      seen.add(mac);
      prev = mac;
      expected = record.seq + 1;
      records++;
      if (record.type === 'gap') {
        gaps++;
        lost += record.lost ?? 0;
      }
    }
  }
  return { ok: true, records, files: paths.length, gaps, lost };
}
