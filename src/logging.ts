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
 * Collects log lines and hands them to the destination in batches of about
 * 16 KiB (or every 250 ms): one asynchronous write costs ~25 µs of CPU (a
 * thread-pool round trip), so one per request line cost more than the rest of
 * the logging. Joining here, rather than with sonic-boom's own `minLength`,
 * also spares the per-line re-measuring of its growing buffer.
 */
type SonicBoom = ReturnType<typeof pino.destination>;

class LineBatcher {
  private lines: string[] = [];
  private size = 0;
  private readonly target: SonicBoom;

  constructor(target: SonicBoom) {
    this.target = target;
  }

  write(line: string): boolean {
    this.lines.push(line);
    this.size += line.length;
    if (this.size >= 16 * 1024) this.flush();
    return true;
  }

  flush(): void {
    if (this.lines.length === 0) return;
    const text = this.lines.length === 1 ? (this.lines[0] as string) : this.lines.join('');
    this.lines = [];
    this.size = 0;
    this.target.write(text);
  }

  flushSync(): void {
    this.flush();
    this.target.flushSync();
  }
}

/**
 * Builds the process logger; `destination` lets tests capture lines. Lines
 * to stdout are batched (LineBatcher) and written asynchronously, so a slow
 * log reader never stalls requests; they are flushed on exit.
 */
export function createLogger(config: Pick<SwitchyardConfig, 'logging'>, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level: config.logging.level,
    base: { service: 'switchyard' },
    redact: { paths: redactedPaths, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (destination) return pino(options, destination);
  const stdout = new LineBatcher(pino.destination({ dest: 1, sync: false }));
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
