/**
 * A private redis-server for tests, on a free loopback port, no persistence,
 * in a temp dir. With REDIS_URL set, that server is used instead: stop() is a
 * no-op and flush() runs FLUSHDB (kill/restart then need the private server).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports.ts';

/** TLS files for a private server (PEM paths); `authClients` demands client certificates. */
export interface TestRedisTls {
  certFile: string;
  keyFile: string;
  caFile: string;
  authClients?: boolean;
}

/** A running test Redis. */
export interface TestRedis {
  url: string;
  port: number;
  /** `rediss://127.0.0.1:<port>` when started with `tls`. */
  tlsUrl?: string;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
  /** SIGKILLs the server (simulates a crash); restart() brings it back. */
  kill(): Promise<void>;
  /** Starts the server again on the same port (empty: no persistence). */
  restart(): Promise<void>;
  /** SIGSTOPs the server: connections stay open, nothing is answered (a hung Redis); resume() continues it. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Deletes every key. */
  flush(): Promise<void>;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`test redis: timed out waiting until ${what}`);
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function flushUrl(url: string): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    await client.flushdb();
  } finally {
    client.disconnect();
  }
}

/**
 * Starts a private redis-server (or adopts REDIS_URL). With `tls` it also
 * listens for TLS on a second port (always private: REDIS_URL is ignored).
 */
export async function startRedis(options: { tls?: TestRedisTls } = {}): Promise<TestRedis> {
  const external = options.tls ? undefined : process.env.REDIS_URL;
  if (external) {
    const port = Number(new URL(external).port || 6379);
    const unsupported = async () => {
      throw new Error('test redis: kill()/restart() need the private redis-server; unset REDIS_URL to run this test');
    };
    return { url: external, port, stop: async () => undefined, kill: unsupported, restart: unsupported, pause: unsupported, resume: unsupported, flush: () => flushUrl(external) };
  }
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error('redis-server is not on PATH: run the tests with `npm test`, which installs the tools they need (bin/test-tools.js), or set REDIS_URL to a Redis to use');
  }
  const directory = await mkdtemp(join(tmpdir(), 'swy-redis-'));
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const tls = options.tls;
  const tlsPort = tls ? await freePort() : undefined;
  const tlsArgs =
    tls && tlsPort
      ? [
          '--tls-port',
          String(tlsPort),
          '--tls-cert-file',
          tls.certFile,
          '--tls-key-file',
          tls.keyFile,
          '--tls-ca-cert-file',
          tls.caFile,
          '--tls-auth-clients',
          tls.authClients ? 'yes' : 'no',
        ]
      : [];
  let child: ChildProcess | undefined;
  let output = '';

  const launch = async () => {
    output = '';
    const started = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', directory, '--daemonize', 'no', '--loglevel', 'warning', ...tlsArgs],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    started.stdout?.on('data', (data: Buffer) => (output += data.toString()));
    started.stderr?.on('data', (data: Buffer) => (output += data.toString()));
    child = started;
    try {
      await waitUntil(
        async () => {
          if (started.exitCode !== null) throw new Error(`redis-server exited: ${output.trim()}`);
          return canConnect(port);
        },
        5_000,
        `redis-server listens on ${port}`,
      );
    } catch (error) {
      started.kill('SIGKILL');
      throw error;
    }
  };
  const halt = async (signal: NodeJS.Signals) => {
    const running = child;
    child = undefined;
    if (!running) return;
    running.kill('SIGCONT'); // a paused server would not act on SIGTERM
    running.kill(signal);
    await exited(running);
  };

  await launch();
  return {
    url,
    port,
    ...(tlsPort ? { tlsUrl: `rediss://127.0.0.1:${tlsPort}` } : {}),
    stop: async () => {
      await halt('SIGTERM');
      await rm(directory, { recursive: true, force: true });
    },
    kill: () => halt('SIGKILL'),
    pause: async () => {
      child?.kill('SIGSTOP');
    },
    resume: async () => {
      child?.kill('SIGCONT');
    },
    restart: async () => {
      await halt('SIGKILL');
      await launch();
    },
    flush: () => flushUrl(url),
  };
}
