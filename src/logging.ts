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
 * to stdout are buffered (written in batches of 4 KiB or at least every
 * 250 ms, and flushed on shutdown): one write syscall per request line cost
 * more than the rest of the logging.
 */
export function createLogger(config: Pick<SwitchyardConfig, 'logging'>, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level: config.logging.level,
    base: { service: 'switchyard' },
    redact: { paths: redactedPaths, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (destination) return pino(options, destination);
  const stdout = pino.destination({ dest: 1, sync: false, minLength: 4096 });
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
