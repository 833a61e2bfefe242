#!/usr/bin/env node
// The `switchyard` command. Runs the compiled CLI when built (`npm run build`), else the TypeScript source
// directly (Node >= 22.18 strips types; not inside node_modules). On an older Node it goes through
// bin/node24.js, which brings Node 24 from the npm registry.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('../dist/main.js', import.meta.url);
const entry = existsSync(compiled) ? compiled : new URL('../src/main.ts', import.meta.url);
const [major, minor] = process.versions.node.split('.').map(Number);
if (major > 22 || (major === 22 && minor >= 19)) {
  await import(entry.href);
} else {
  const launcher = fileURLToPath(new URL('./node24.js', import.meta.url));
  const child = spawnSync(process.execPath, [launcher, fileURLToPath(entry), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(child.status ?? 1);
}
