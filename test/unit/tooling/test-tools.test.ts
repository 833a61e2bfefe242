/**
 * bin/test-tools.js, which `npm test` runs before vitest, on machines it cannot see: the real script with a PATH
 * that hides this machine's redis-server, redis-cli, promtool, prometheus and docker-compose and openssl (nothing is uninstalled). The
 * install branch runs against a stand-in apt-get in that PATH, which records its arguments and drops the programs
 * in place the way the Debian packages would; the failing branches must answer within a second with one line that
 * names the command to run.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const script = resolve(import.meta.dirname, '../../../bin/test-tools.js');
const tools = ['redis-server', 'redis-cli', 'promtool', 'prometheus', 'docker-compose', 'openssl'];
const nobody = 65534;
const directories: string[] = [];

afterEach(() => {
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

/** An empty directory to serve as the whole PATH (readable by `nobody` too). */
function emptyPath(): string {
  const directory = mkdtempSync(join(tmpdir(), 'swy-test-tools-'));
  chmodSync(directory, 0o755);
  directories.push(directory);
  return directory;
}

function executable(file: string, text: string): void {
  writeFileSync(file, text);
  chmodSync(file, 0o755);
}

/**
 * A Node that `uid` may run: this one, or another on PATH (the Node 24 that runs vitest may sit in root's home,
 * which `nobody` cannot enter; `npm test` runs the script on the system's Node anyway).
 */
function nodeFor(uid: number): string {
  const candidates = [
    process.execPath,
    ...(process.env.PATH ?? '')
      .split(delimiter)
      .filter(Boolean)
      .map((directory) => join(directory, 'node')),
  ];
  const usable = candidates.find((node) => spawnSync(node, ['--version'], { uid, gid: uid }).status === 0);
  if (!usable) throw new Error(`no Node on PATH that uid ${uid} may run (tried ${candidates.join(', ')})`);
  return usable;
}

/** Runs the script with only `path` on PATH, as `uid` when given (this process must then be root). */
function runScript(path: string, uid?: number) {
  const node = uid === undefined ? process.execPath : nodeFor(uid);
  const started = performance.now();
  const result = spawnSync(node, [script], {
    encoding: 'utf8',
    env: { PATH: path, HOME: path },
    ...(uid === undefined ? {} : { uid, gid: uid }),
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, ms: performance.now() - started };
}

/** A stand-in apt-get: logs each call; `install` puts the four programs into its own directory. */
function fakeApt(directory: string, options: { failUpdate?: boolean } = {}): string {
  const log = join(directory, 'apt.log');
  const programs = tools.map((name) => `printf '#!/bin/sh\\n' > "${directory}/${name}"; /bin/chmod +x "${directory}/${name}"`).join('\n');
  executable(
    join(directory, 'apt-get'),
    [
      '#!/bin/sh',
      `printf '%s DEBIAN_FRONTEND=%s\\n' "$*" "$DEBIAN_FRONTEND" >> "${log}"`,
      options.failUpdate ? 'if [ "$1" = update ]; then echo "E: Could not resolve deb.debian.org" >&2; exit 100; fi' : '',
      `if [ "$1" = install ]; then\n${programs}\nfi`,
      'exit 0',
      '',
    ].join('\n'),
  );
  return log;
}

const isRoot = process.getuid?.() === 0;
// The install branch only runs as root; a non-root developer's run cannot reach it (CI runs as root).
if (!isRoot) console.warn('bin/test-tools.js: the root-only install tests are skipped: this process is not root');

describe('bin/test-tools.js', () => {
  it('does nothing, silently, when every tool is on PATH', () => {
    const path = emptyPath();
    for (const name of tools) executable(join(path, name), '#!/bin/sh\n');
    const log = fakeApt(path);
    const result = runScript(path);
    expect(result).toMatchObject({ status: 0, stdout: '', stderr: '' });
    expect(() => readFileSync(log)).toThrow(); // apt-get never ran
  });

  it.skipIf(!isRoot)('as root with apt-get: one line naming the packages, apt-get update + install once, then a no-op', () => {
    const path = emptyPath();
    const log = fakeApt(path);
    const first = runScript(path);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toBe(
      'npm test needs redis-server, redis-cli, promtool, prometheus, docker-compose, openssl (not on PATH): installing the Debian packages redis-server redis-tools prometheus docker-compose openssl with apt-get (once)...\n',
    );
    expect(readFileSync(log, 'utf8')).toBe(
      [
        'update -qq DEBIAN_FRONTEND=noninteractive',
        'install -y -qq --no-install-recommends redis-server redis-tools prometheus docker-compose openssl DEBIAN_FRONTEND=noninteractive',
        '',
      ].join('\n'),
    );

    const second = runScript(path);
    expect(second).toMatchObject({ status: 0, stderr: '' });
    expect(readFileSync(log, 'utf8').split('\n')).toHaveLength(3); // no further apt-get calls
  });

  it.skipIf(!isRoot)('installs only the packages of the tools that are missing', () => {
    const path = emptyPath();
    executable(join(path, 'redis-server'), '#!/bin/sh\n');
    executable(join(path, 'redis-cli'), '#!/bin/sh\n');
    executable(join(path, 'docker-compose'), '#!/bin/sh\n');
    executable(join(path, 'openssl'), '#!/bin/sh\n');
    const log = fakeApt(path);
    const result = runScript(path);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toContain('npm test needs promtool, prometheus (not on PATH): installing the Debian packages prometheus with apt-get');
    expect(readFileSync(log, 'utf8')).toContain('install -y -qq --no-install-recommends prometheus DEBIAN_FRONTEND');
  });

  it.skipIf(!isRoot)('as root, when apt-get fails: one line with the failing step, what apt said and the command to run', () => {
    const path = emptyPath();
    fakeApt(path, { failUpdate: true });
    const result = runScript(path);
    expect(result.status).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(2); // the "installing" line, then the failure
    expect(lines[1]).toBe(
      '`apt-get update -qq` failed (E: Could not resolve deb.debian.org): run `apt-get update && apt-get install -y --no-install-recommends redis-server redis-tools prometheus docker-compose openssl` yourself, then npm test again.',
    );
  });

  it('without apt-get: fails within a second, with one line naming the packages', () => {
    const result = runScript(emptyPath());
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'npm test needs redis-server, redis-cli, promtool, prometheus, docker-compose, openssl (not on PATH) and there is no apt-get to install them: install the packages that provide them (Debian/Ubuntu: `apt-get install -y --no-install-recommends redis-server redis-tools prometheus docker-compose openssl`), then run npm test again.\n',
    );
    expect(result.ms).toBeLessThan(1_000);
  });

  it('not root, with apt-get: fails within a second, with one line naming the sudo command; apt-get is not run', () => {
    const path = emptyPath();
    const log = fakeApt(path);
    const result = runScript(path, isRoot ? nobody : undefined);
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(
      'npm test needs redis-server, redis-cli, promtool, prometheus, docker-compose, openssl (not on PATH): run `sudo apt-get update && sudo apt-get install -y --no-install-recommends redis-server redis-tools prometheus docker-compose openssl`, then npm test again.\n',
    );
    expect(result.ms).toBeLessThan(1_000);
    expect(() => readFileSync(log)).toThrow();
  });
});
