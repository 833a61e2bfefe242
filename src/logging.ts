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
  '*.apiKey',
];

/** Builds the process logger; `destination` lets tests capture lines. */
export function createLogger(config: Pick<SwitchyardConfig, 'logging'>, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level: config.logging.level,
    base: { service: 'switchyard' },
    redact: { paths: redactedPaths, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}
