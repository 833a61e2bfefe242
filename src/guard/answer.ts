/**
 * What the guard does to a complete JSON answer on its way out: the request's
 * redacted values go back (guard.restore) and secrets the answer carries are
 * replaced (guard.output), both recorded on the request and counted. With
 * nothing redacted and the output scan off, the answer passes untouched.
 */
import type { GatewayMetrics } from '../metrics/metrics.ts';
import type { RequestRecord } from '../proxy/record.ts';
import { type Guard, restorePlaceholders } from './policy.ts';
import { chained, PlaceholderRestorer, SecretScrubber, type TextFilter } from './stream-guard.ts';

export function guardedAnswer(guard: Guard | undefined, metrics: GatewayMetrics, record: RequestRecord, answer: string): string {
  const body = record.restore === undefined ? answer : restorePlaceholders(answer, record.restore);
  const scanned = guard?.scanAnswer(body);
  if (scanned === undefined) return body;
  record.guard = [...(record.guard ?? []), ...scanned.categories.map((category) => `${category}:output_redact`)];
  for (const category of scanned.categories) metrics.guardFindings.labels(category, 'output_redact').inc();
  return scanned.json;
}

/**
 * The filter each choice of a streamed answer goes through: the request's redacted values back (guard.restore),
 * then secrets out (guard.output), each finding counted once per request. Undefined when neither applies.
 */
export function streamFilterFor(guard: Guard | undefined, metrics: GatewayMetrics, record: RequestRecord): (() => TextFilter) | undefined {
  const values = record.restore === undefined ? undefined : new Map([...record.restore].map(([placeholder, json]) => [placeholder, JSON.parse(`"${json}"`) as string]));
  const output = guard?.scansOutput ? guard : undefined;
  if (values === undefined && output === undefined) return undefined;
  const noted = new Set<string>();
  const scan = (text: string): string => {
    const scanned = output?.scanAnswer(text);
    if (scanned === undefined) return text;
    for (const category of scanned.categories) {
      if (noted.has(category)) continue;
      noted.add(category);
      record.guard = [...(record.guard ?? []), `${category}:output_redact`];
      metrics.guardFindings.labels(category, 'output_redact').inc();
    }
    return scanned.json;
  };
  return () => {
    const restorer = values === undefined ? undefined : new PlaceholderRestorer(values);
    const scrubber = output === undefined ? undefined : new SecretScrubber(scan);
    return restorer && scrubber ? chained(restorer, scrubber) : ((restorer ?? scrubber) as TextFilter);
  };
}
