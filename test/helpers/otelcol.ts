/**
 * A real OpenTelemetry Collector for the tracing tests, and the OTLP/HTTP
 * receiver the collector forwards to (so the test can read what it accepted).
 *
 * The collector is built once from its Go modules with the OpenTelemetry
 * Collector Builder (`npm run otelcol:setup`: about 3-4 minutes on 2 cores,
 * needs Go) into ${XDG_CACHE_HOME:-~/.cache}/switchyard-otelcol/<version>, with
 * only the OTLP receiver and the OTLP/HTTP exporter. Tests use it when it is
 * there; otherwise the gateway exports straight to the test's receiver and the
 * test says so.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';

export const otelcolVersion = 'v0.165.0';

function cacheDir(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'switchyard-otelcol', otelcolVersion);
}

/** Where the built collector lives (SWITCHYARD_OTELCOL overrides it). */
export function otelcolBinary(): string {
  return process.env.SWITCHYARD_OTELCOL ?? join(cacheDir(), 'otelcol-switchyard');
}

/** Builds the collector unless it is there already; returns its path, or throws with what went wrong. */
export function buildOtelcol(log: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): string {
  const binary = otelcolBinary();
  if (existsSync(binary)) return binary;
  const dir = cacheDir();
  mkdirSync(join(dir, 'bin'), { recursive: true });
  const env = { ...process.env, GOBIN: join(dir, 'bin'), GOFLAGS: `${process.env.GOFLAGS ?? ''} -buildvcs=false`.trim() };
  log(`otelcol: building the OpenTelemetry Collector ${otelcolVersion} (OTLP receiver, OTLP/HTTP exporter) into ${dir} (once, a few minutes)`);
  const run = (command: string, args: string[]): void => {
    const result = spawnSync(command, args, { cwd: dir, env, stdio: ['ignore', 'inherit', 'inherit'] });
    if (result.error) throw new Error(`otelcol: ${command} failed to start (${result.error.message}); is Go installed?`);
    if (result.status !== 0) throw new Error(`otelcol: ${command} ${args.join(' ')} exited with ${result.status}`);
  };
  run('go', ['install', `go.opentelemetry.io/collector/cmd/builder@${otelcolVersion}`]);
  writeFileSync(
    join(dir, 'builder.yaml'),
    [
      'dist:',
      '  name: otelcol-switchyard',
      "  description: OpenTelemetry Collector for Switchyard's tracing tests",
      '  output_path: ./build',
      'receivers:',
      `  - gomod: go.opentelemetry.io/collector/receiver/otlpreceiver ${otelcolVersion}`,
      'exporters:',
      `  - gomod: go.opentelemetry.io/collector/exporter/otlphttpexporter ${otelcolVersion}`,
      '',
    ].join('\n'),
  );
  run(join(dir, 'bin', 'builder'), ['--config', 'builder.yaml']);
  spawnSync('cp', [join(dir, 'build', 'otelcol-switchyard'), binary]);
  if (!existsSync(binary)) throw new Error(`otelcol: the build left no ${binary}`);
  log(`otelcol: built ${binary}`);
  return binary;
}

/** One OTLP export request as the receiver got it. */
export interface Export {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The body as text: the tests look for prompt text in it. */
  text: string;
  json: OtlpTraces;
}

/** The parts of an OTLP/JSON ExportTraceServiceRequest the tests read. */
export interface OtlpTraces {
  resourceSpans?: Array<{
    resource?: { attributes?: OtlpAttribute[] };
    scopeSpans?: Array<{ spans?: OtlpSpan[] }>;
  }>;
}

export interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
}

export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: OtlpAttribute[];
  status?: { code?: number };
}

/** A span with its attributes as plain values. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  kind: number;
  statusCode: number;
  attributes: Record<string, string | number | boolean>;
}

/** An OTLP/HTTP receiver (JSON encoding) on a free loopback port, keeping every export. */
export interface OtlpReceiver {
  url: string;
  exports: Export[];
  spans(): ReceivedSpan[];
  close(): Promise<void>;
}

function attributeValue(value: OtlpAttribute['value']): string | number | boolean {
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.boolValue !== undefined) return value.boolValue;
  return '';
}

function hexId(id: string | undefined): string | undefined {
  if (id === undefined || id === '') return undefined;
  // OTLP/JSON ids are hex; accept base64 too (protobuf JSON mapping) so a change of encoder shows up as a clear failure.
  return /^[0-9a-f]+$/i.test(id) ? id.toLowerCase() : Buffer.from(id, 'base64').toString('hex');
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const exports: Export[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (!String(request.headers['content-type'] ?? '').includes('json')) {
        response.writeHead(415, { 'content-type': 'application/json' }).end('{"message":"this test receiver reads OTLP/JSON only"}');
        return;
      }
      exports.push({ path: request.url ?? '', headers: request.headers, text, json: JSON.parse(text) as OtlpTraces });
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    exports,
    spans() {
      const spans: ReceivedSpan[] = [];
      for (const sent of exports) {
        for (const resource of sent.json.resourceSpans ?? []) {
          for (const scope of resource.scopeSpans ?? []) {
            for (const span of scope.spans ?? []) {
              spans.push({
                traceId: hexId(span.traceId) as string,
                spanId: hexId(span.spanId) as string,
                parentSpanId: hexId(span.parentSpanId),
                name: span.name,
                kind: span.kind,
                statusCode: span.status?.code ?? 0,
                attributes: Object.fromEntries((span.attributes ?? []).map((attribute) => [attribute.key, attributeValue(attribute.value)])),
              });
            }
          }
        }
      }
      return spans;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A running collector: OTLP/HTTP in at `tracesUrl`, forwarded as OTLP/JSON to the receiver. */
export interface Collector {
  tracesUrl: string;
  /** What the collector wrote (its warnings and errors). */
  output: string[];
  close(): Promise<void>;
}

/** Starts the built collector forwarding to `receiverUrl`, once it accepts connections. */
export async function startCollector(binary: string, receiverUrl: string): Promise<Collector> {
  const port = await freePort();
  const config = [
    'receivers:',
    '  otlp:',
    '    protocols:',
    '      http:',
    `        endpoint: 127.0.0.1:${port}`,
    'exporters:',
    '  otlp_http:',
    `    endpoint: ${receiverUrl}`,
    '    encoding: json',
    '    compression: none',
    '    retry_on_failure:',
    '      enabled: false',
    '    sending_queue:',
    '      enabled: false',
    'service:',
    '  pipelines:',
    '    traces:',
    '      receivers: [otlp]',
    '      exporters: [otlp_http]',
    '  telemetry:',
    '    metrics:',
    '      level: none',
    '    logs:',
    '      level: warn',
  ].join('\n');
  // The config goes in as a yaml: URI, so nothing is written to disk.
  const child: ChildProcess = spawn(binary, ['--config', `yaml:${config}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  child.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the collector did not start: ${output.join('').slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    tracesUrl: `http://127.0.0.1:${port}/v1/traces`,
    output,
    async close() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
