/** The `audit` config section (see file-sink.ts). */
import { Type } from '@sinclair/typebox';

/** The tamper-evident audit log (src/audit/). */
export const AuditSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: false, description: 'one hash-chained record per request and per gateway action' }),
    hmacKey: Type.Optional(Type.String({ minLength: 32, description: 'HMAC-SHA256 key of the chain (its UTF-8 bytes; use ${ENV}); needed when enabled' })),
    path: Type.String({ minLength: 1, default: 'switchyard-audit.jsonl', description: 'the append-only file (mode 0600)' }),
    maxBytes: Type.Integer({
      minimum: 4096,
      default: 100 * 1024 * 1024,
      description: 'past this size the file is renamed <path>.<time>.<last seq> and the chain continues in a new one',
    }),
    flushIntervalMs: Type.Integer({ minimum: 1, default: 50, description: 'records are sealed and written in batches this often' }),
    maxBufferedRecords: Type.Integer({ minimum: 1, default: 100_000, description: 'records waiting for the disk; past it they are lost and a gap record says how many' }),
  },
  { additionalProperties: false, default: {} },
);
