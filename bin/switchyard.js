#!/usr/bin/env node
// Runs the compiled CLI when built (`npm run build`), else the TypeScript source
// directly (Node >= 22.18 strips types; not inside node_modules).
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/main.js', import.meta.url);
await import(existsSync(compiled) ? compiled.href : new URL('../src/main.ts', import.meta.url).href);
