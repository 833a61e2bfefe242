/**
 * The CLI as an operator meets it: help on every command, one clear line for a
 * bad flag or a port in use (exit 1), never a stack trace.
 */
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../../..');

function cli(...args: string[]) {
  const result = spawnSync(process.execPath, ['src/main.ts', ...args], { cwd: root, encoding: 'utf8', timeout: 20_000, env: { ...process.env, NODE_NO_WARNINGS: '1' } });
  return { code: result.status, out: result.stdout, err: result.stderr };
}

describe('switchyard CLI', () => {
  it('prints help for serve and demo and exits 0', () => {
    for (const args of [['serve', '--help'], ['demo', '-h'], ['help']]) {
      const run = cli(...args);
      expect(run.code, args.join(' ')).toBe(0);
      expect(run.out).toMatch(/^Usage: switchyard/);
      expect(run.err).toBe('');
    }
  });

  it('refuses an unknown flag or a bad port with one message and the usage, exit 1', () => {
    for (const [args, message] of [
      [['serve', '--bogus'], "Unknown option '--bogus'"],
      [['serve', '--port', 'abc'], '--port must be an integer from 0 to 65535 (got "abc")'],
      [['demo', '--port', '70000'], '--port must be an integer from 0 to 65535 (got "70000")'],
      [['frobnicate'], 'Unknown command "frobnicate"'],
    ] as const) {
      const run = cli(...args);
      expect(run.code, args.join(' ')).toBe(1);
      expect(run.err).toContain(message);
      expect(run.err).toContain('Usage: switchyard');
      expect(run.err).not.toMatch(/\n\s+at /); // no stack trace
    }
  });

  it('says in one line that the port is taken', async () => {
    const holder = createServer();
    await new Promise<void>((done) => holder.listen(0, '127.0.0.1', done));
    const port = (holder.address() as { port: number }).port;
    try {
      const run = cli('serve', '--config', 'config/switchyard.example.yaml', '--port', String(port), '--host', '127.0.0.1');
      expect(run.code).toBe(1);
      expect(run.err.trim()).toBe(`switchyard: listen EADDRINUSE: address already in use 127.0.0.1:${port}`);
    } finally {
      holder.close();
    }
  });
});
