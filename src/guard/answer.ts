/**
 * What the guard does to a complete JSON answer on its way out: the request's
 * redacted values go back (guard.restore) and secrets the answer carries are
 * replaced (guard.output), both recorded on the request and counted. With
 * nothing redacted and the output scan off, the answer passes untouched.
 */
import type { GatewayMetrics } from '../metrics/metrics.ts';
import type { RequestRecord } from '../proxy/record.ts';
import { type Guard, restorePlaceholders } from './policy.ts';

export function guardedAnswer(guard: Guard | undefined, metrics: GatewayMetrics, record: RequestRecord, answer: string): string {
  const body = record.restore === undefined ? answer : restorePlaceholders(answer, record.restore);
  const scanned = guard?.scanAnswer(body);
  if (scanned === undefined) return body;
  record.guard = [...(record.guard ?? []), ...scanned.categories.map((category) => `${category}:output_redact`)];
  for (const category of scanned.categories) metrics.guardFindings.labels(category, 'output_redact').inc();
  return scanned.json;
}
