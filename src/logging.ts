/**
 * The pino logger: JSON lines, secrets redacted. Prompts and completions are
 * never logged unless `logging.logPrompts` is on.
 */
import { pino, type Logger } from 'pino';
import type { SwitchyardConfig } from './config/schema.ts';

/** Header paths whose values never reach a log line. */
export const redactedPaths = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers["api-key"]',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-api-key"]',
  'apiKey',
];

/**
 * Builds the process logger; `destination` lets tests capture lines. Lines
 * to stdout are buffered (written in batches of 16 KiB or at least every
 * 250 ms, and flushed on shutdown): an asynchronous write costs ~25 µs of CPU
 * (a thread-pool round trip), so one per request line cost more than the rest
 * of the logging; batched, it is under 1 µs a line. Asynchronous, so a slow
 * log reader never stalls requests.
 */
export function createLogger(config: Pick<SwitchyardConfig, 'logging'>, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level: config.logging.level,
    base: { service: 'switchyard' },
    redact: { paths: redactedPaths, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (destination) return pino(options, destination);
  const stdout = pino.destination({ dest: 1, sync: false, minLength: 16 * 1024, maxWrite: 64 * 1024 });
  const flusher = setInterval(() => stdout.flush(), 250);
  flusher.unref();
  process.once('exit', () => {
    clearInterval(flusher);
    try {
      stdout.flushSync();
    } catch {
      // a write still in flight at exit: nothing more can be done synchronously
    }
  });
  return pino(options, stdout);
}

/**
 * A writer for the one `info` line every request ends with, in exactly the
 * shape pino gives (`level`, `time`, the logger's bindings, the fields, `msg`)
 * but built with one JSON.stringify and written straight to the logger's
 * destination: pino's generic path (serializers, redaction, per-key
 * stringify, a fresh ISO time) cost several times more. The fields must hold
 * no secrets (nothing here is redacted) and end with `msg`.
 */
export function createInfoLineWriter(logger: Logger): (fields: Record<string, unknown>) => void {
  const internals = logger as unknown as Record<symbol, unknown>;
  const stream = internals[pino.symbols.streamSym] as { write(line: string): unknown };
  const bindings = String(internals[pino.symbols.chindingsSym] ?? '');
  const infoLevel = pino.levels.values.info ?? 30;
  let lastMs = -1;
  let prefix = '';
  return (fields) => {
    if (logger.levelVal > infoLevel) return;
    const now = Date.now();
    if (now !== lastMs) {
      lastMs = now;
      prefix = `{"level":${infoLevel},"time":"${new Date(now).toISOString()}"${bindings},`;
    }
    stream.write(`${prefix}${JSON.stringify(fields).slice(1)}\n`);
  };
}
