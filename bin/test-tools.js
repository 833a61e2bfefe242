#!/usr/bin/env node
// Makes sure the programs the test suites start are on PATH before vitest runs: redis-server and redis-cli (Redis tests),
// promtool and prometheus (deploy checks), docker-compose (the compose check) and openssl (test certificates for TLS). `npm test` runs this first.
// As root with apt-get (a fresh Debian machine, CI) it installs the missing Debian packages, with one line saying
// which; they stay installed, so later runs find everything and print nothing. Otherwise it stops at once with one
// line naming the command to run, instead of letting dozens of tests fail one by one.
// Plain JavaScript on purpose, like node24.js: it runs on any Node.
// Usage: node bin/test-tools.js
import { spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Each program the tests run, and the Debian package that provides it. */
const tools = {
  'redis-server': 'redis-server',
  // The Cluster failover test joins its nodes with `redis-cli --cluster create`. Sentinels need no program of
  // their own: `redis-server FILE --sentinel` (Debian's redis-sentinel package is only that, as a service).
  'redis-cli': 'redis-tools',
  promtool: 'prometheus',
  prometheus: 'prometheus',
  'docker-compose': 'docker-compose',
  openssl: 'openssl',
};

function onPath(name) {
  for (const directory of (process.env.PATH ?? '').split(delimiter)) {
    if (directory === '') continue;
    const file = join(directory, name);
    try {
      accessSync(file, constants.X_OK);
      if (statSync(file).isFile()) return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

function fail(line) {
  process.stderr.write(`${line}\n`);
  process.exit(1);
}

const missingTools = () => Object.keys(tools).filter((name) => !onPath(name));

const missing = missingTools();
if (missing.length > 0) {
  const packages = [...new Set(missing.map((name) => tools[name]))].join(' ');
  // Recommends would pull in docker.io and prometheus-node-exporter, which the tests do not use.
  const install = `apt-get install -y --no-install-recommends ${packages}`;
  const needs = `npm test needs ${missing.join(', ')} (not on PATH)`;
  const root = process.getuid?.() === 0;
  if (!onPath('apt-get'))
    fail(`${needs} and there is no apt-get to install them: install the packages that provide them (Debian/Ubuntu: \`${install}\`), then run npm test again.`);
  if (!root) fail(`${needs}: run \`sudo apt-get update && sudo ${install}\`, then npm test again.`);

  process.stderr.write(`${needs}: installing the Debian packages ${packages} with apt-get (once)...\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [
    ['update', '-qq'],
    ['install', '-y', '-qq', '--no-install-recommends', ...packages.split(' ')],
  ]) {
    const step = spawnSync('apt-get', args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    if (step.status !== 0) {
      const said = `${step.stderr ?? ''}${step.stdout ?? ''}`.trim().split('\n').pop() ?? '';
      fail(`\`apt-get ${args.join(' ')}\` failed${said ? ` (${said.trim()})` : ''}: run \`apt-get update && ${install}\` yourself, then npm test again.`);
    }
  }
  const still = missingTools();
  if (still.length > 0) fail(`apt-get installed ${packages} but ${still.join(', ')} is still not on PATH (${process.env.PATH ?? ''}): add its directory to PATH.`);
}
