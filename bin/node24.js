#!/usr/bin/env node
// Runs a Node script on Node >= 22.19 (what Switchyard needs: type stripping, undici 8, vitest 5).
// On an older Node (Debian's Node 20, say) it uses Node 24 from the npm registry, installed once into
// ${XDG_CACHE_HOME:-~/.cache}/switchyard-node, so `npm run demo` and `npm test` work on a fresh machine.
// Plain JavaScript on purpose: it must run on the old Node too.
// Usage: node bin/node24.js SCRIPT [ARGS...]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const [major, minor] = process.versions.node.split('.').map(Number);
const modern = major > 22 || (major === 22 && minor >= 19);
const args = process.argv.slice(2);
if (args.length === 0) {
  process.stderr.write('usage: node bin/node24.js SCRIPT [ARGS...]\n');
  process.exit(2);
}

let node = process.execPath;
if (!modern) {
  const cache = process.env.SWITCHYARD_NODE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'switchyard-node');
  node = join(cache, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(node)) {
    process.stderr.write(`switchyard needs Node >= 22.19 (this is ${process.version}); installing Node 24 from the npm registry into ${cache} (once)...\n`);
    mkdirSync(cache, { recursive: true });
    const install = spawnSync('npm', ['install', '--prefix', cache, '--no-save', '--no-audit', '--no-fund', 'node@24'], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (install.status !== 0 || !existsSync(node)) {
      process.stderr.write(`could not install Node 24: run \`npm install --prefix ${cache} node@24\`, or install Node 24 LTS yourself.\n`);
      process.exit(1);
    }
  }
}
const child = spawnSync(node, args, { stdio: 'inherit', env: { ...process.env, PATH: `${join(node, '..')}:${process.env.PATH ?? ''}` } });
if (child.signal) process.kill(process.pid, child.signal);
process.exit(child.status ?? 1);
