/**
 * Without `npm run e2e:setup` the suite must fail loudly, never skip: every
 * e2e file starts its llama-servers in beforeAll through startLlamaServer,
 * which throws this message (and vitest fails the whole file).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { cacheDir, manifestPath, RECIPE_VERSION } from './setup/config.ts';
import { resolveLlamaBuild, startLlamaServer } from './helpers/llama-server.ts';

const saved = process.env.SWITCHYARD_E2E_CACHE;
const made: string[] = [];

function emptyCache(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-e2e-missing-'));
  made.push(dir);
  process.env.SWITCHYARD_E2E_CACHE = dir;
  return dir;
}

afterEach(() => {
  if (saved === undefined) delete process.env.SWITCHYARD_E2E_CACHE;
  else process.env.SWITCHYARD_E2E_CACHE = saved;
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('no llama.cpp build', () => {
  it('resolveLlamaBuild and startLlamaServer throw "run `npm run e2e:setup` first"', async () => {
    emptyCache();
    await expect(resolveLlamaBuild()).rejects.toThrow(/^run `npm run e2e:setup` first: no llama\.cpp build found/);
    await expect(startLlamaServer({ slots: 1, ctx: 256 })).rejects.toThrow(/run `npm run e2e:setup` first/);
  });

  it('a manifest from another recipe or naming a missing binary is no build either', async () => {
    emptyCache();
    mkdirSync(cacheDir(), { recursive: true });
    writeFileSync(manifestPath(cacheDir()), JSON.stringify({ recipeVersion: RECIPE_VERSION + 1 }));
    await expect(resolveLlamaBuild()).rejects.toThrow(/run `npm run e2e:setup` first: .* is for recipe/);
    writeFileSync(manifestPath(cacheDir()), JSON.stringify({ recipeVersion: RECIPE_VERSION, serverBin: '/nonexistent/llama-server', modelPath: '/nonexistent/m.gguf' }));
    await expect(resolveLlamaBuild()).rejects.toThrow(/run `npm run e2e:setup` first: \/nonexistent\/llama-server is missing/);
  });
});
