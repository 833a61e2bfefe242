/**
 * `npm run otelcol:setup`: builds the OpenTelemetry Collector the tracing test
 * runs (once; see otelcol.ts). Needs Go and the Go module proxy.
 */
import { buildOtelcol } from './otelcol.ts';

try {
  process.stdout.write(`${buildOtelcol()}\n`);
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(1);
}
