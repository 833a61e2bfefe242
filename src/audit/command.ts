/** `switchyard audit verify [--config FILE | --key-env VAR] FILE...`: returns the text to print and the exit code. */
import { parseArgs } from 'node:util';
import type { SwitchyardConfig } from '../config/schema.ts';
import { verifyFiles } from './verify.ts';

export const auditUsage = `Usage:
  switchyard audit verify [--config FILE | --key-env VAR] FILE...
Checks the hash chain of audit files given in order (oldest rotated file first). The HMAC key comes from the
config's audit.hmacKey, else from the environment variable named by --key-env (default SWITCHYARD_AUDIT_KEY).
Exit 0: the chain is intact. Exit 1: the first edited, deleted, inserted or reordered record is named.`;

export function runAuditCommand(argv: string[], load: (file: string) => SwitchyardConfig): { output: string; code: number } {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { config: { type: 'string', short: 'c' }, 'key-env': { type: 'string' } } });
  if (sub !== 'verify' || positionals.length === 0) return { output: auditUsage, code: 1 };
  const variable = values['key-env'] ?? 'SWITCHYARD_AUDIT_KEY';
  const key = values.config ? load(values.config).audit.hmacKey : process.env[variable];
  if (!key) return { output: `no HMAC key: set ${variable} or pass --config with audit.hmacKey`, code: 1 };
  const result = verifyFiles(positionals, key);
  if (result.ok) {
    const lost = result.gaps > 0 ? `; ${result.gaps} gap records say ${result.lost} records were lost to a full buffer` : '';
    return { output: `ok: ${result.records} records in ${result.files} files, chain intact${lost}`, code: 0 };
  }
  const error = result.error as NonNullable<typeof result.error>;
  return { output: `${error.problem}: ${error.file} line ${error.line}${error.seq === undefined ? '' : ` (seq ${error.seq})`}: ${error.message}`, code: 1 };
}
