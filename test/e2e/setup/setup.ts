// `npm run e2e:setup`: build a real llama.cpp `llama-server` (and the
// llama2.c converter) from the llama.cpp source that the npm package
// node-llama-cpp ships as a git bundle, and make a tiny random-weight model,
// into a cache folder outside the repo. Idempotent: a second run only checks
// the cached result and finishes in seconds.
//
//   SWITCHYARD_E2E_CACHE       cache root (default ${XDG_CACHE_HOME:-~/.cache}/switchyard-e2e)
//   SWITCHYARD_E2E_JOBS        parallel compile jobs (default os.availableParallelism())
//   SWITCHYARD_E2E_KEEP_BUILD  1 = keep the llama.cpp source/build tree after success
//   SWITCHYARD_E2E_FORCE       1 = ignore an existing manifest and rebuild the model/manifest

import { createHash } from 'node:crypto';
import { copyFileSync, chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  BUILD_TARGETS,
  CMAKE_FLAGS,
  EXPECTED_MODEL_SHA256,
  NODE_LLAMA_CPP_VERSION,
  RECIPE_VERSION,
  TINY_MODEL,
  cacheDir,
  cacheKey,
  cacheRoot,
  manifestPath,
  type E2eManifest,
} from './config.ts';
import { ensureAgentClients } from './agent-clients.ts';
import { acquireLock } from './lock.ts';
import { SetupError, killRunningChildren, log, run, runChecked, which } from './proc.ts';
import { patchGgufU32, readGgufU32, writeLlama2cCheckpoint } from './tiny-model.ts';

const MODEL_FILE = `${TINY_MODEL.name}-f32.gguf`;

interface Tools {
  npm: string;
  git: string;
  cmake: string;
  make: string;
  tar: string;
  cc: string;
  cxx: string;
}

function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function envFlag(name: string): boolean {
  const v = process.env[name];
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

// ------------------------------------------------------------------ checking

/** The manifest if the cache is complete and working, else a reason string. */
async function checkExisting(dir: string): Promise<E2eManifest | string> {
  const file = manifestPath(dir);
  if (!existsSync(file)) return 'no manifest yet';
  let m: E2eManifest;
  try {
    m = JSON.parse(readFileSync(file, 'utf8')) as E2eManifest;
  } catch (err) {
    return `manifest unreadable: ${(err as Error).message}`;
  }
  if (m.recipeVersion !== RECIPE_VERSION) return `manifest is for recipe ${m.recipeVersion}`;
  for (const p of [m.serverBin, m.convertBin, m.modelPath]) {
    if (typeof p !== 'string' || !existsSync(p)) return `missing ${p}`;
  }
  if (statSync(m.modelPath).size !== m.modelBytes) return 'model file has the wrong size';
  if (sha256File(m.modelPath) !== m.modelSha256) return 'model file checksum differs';
  const res = await run(m.serverBin, ['--version'], { timeoutMs: 20_000 }).catch((err: Error) => ({ code: -1, signal: null, stdout: '', stderr: err.message }));
  if (res.code !== 0) return `\`${m.serverBin} --version\` failed: ${res.stderr.trim().split('\n').slice(-3).join(' ')}`;
  return m;
}

function serverVersionLine(out: string): string {
  const line = out.split('\n').find((l) => l.startsWith('version:'));
  return (line ?? out.trim().split('\n')[0] ?? '').trim();
}

// ----------------------------------------------------------------- preflight

async function preflight(): Promise<Tools> {
  log('checking tools');
  const missing: string[] = [];
  const need = (label: string, ...names: string[]): string => {
    for (const n of names) {
      const p = which(n);
      if (p !== null) return p;
    }
    missing.push(`${label} (looked for ${names.join(', ')} on PATH)`);
    return '';
  };
  const nodeDirNpm = path.join(path.dirname(process.execPath), 'npm');
  const npm = which('npm') ?? (existsSync(nodeDirNpm) ? nodeDirNpm : need('npm', 'npm'));
  const tools: Tools = {
    npm,
    git: need('git', 'git'),
    cmake: need('cmake >= 3.14', 'cmake'),
    make: need('make (CMake generator)', 'make', 'gmake'),
    tar: need('tar', 'tar'),
    cc: need('a C compiler', 'cc', 'gcc', 'clang'),
    cxx: need('a C++17 compiler', 'c++', 'g++', 'clang++'),
  };
  if (missing.length > 0) {
    throw new SetupError(
      `missing build tools:\n  - ${missing.join('\n  - ')}\ninstall them (Debian: apt-get install -y build-essential cmake git) and run \`npm run e2e:setup\` again`,
    );
  }
  const cm = await runChecked('cmake --version', tools.cmake, ['--version']);
  const m = /cmake version (\d+)\.(\d+)/.exec(cm.stdout);
  if (m !== null && (Number(m[1]) < 3 || (Number(m[1]) === 3 && Number(m[2]) < 14))) {
    throw new SetupError(`cmake ${m[1]}.${m[2]} is too old: llama.cpp needs cmake >= 3.14`);
  }
  const cxxv = await runChecked('C++ compiler check', tools.cxx, ['--version']);
  log(`  cmake ${m?.[1]}.${m?.[2]}, ${cxxv.stdout.split('\n')[0]}`);
  return tools;
}

// ---------------------------------------------------------------- the steps

async function fetchSource(tools: Tools, work: string): Promise<{ srcDir: string; release: string | null }> {
  const srcDir = path.join(work, 'llama.cpp');
  const infoCopy = path.join(work, 'llama.cpp.info.json');
  const readRelease = (): string | null => {
    try {
      const info = JSON.parse(readFileSync(infoCopy, 'utf8')) as { tag?: string };
      return info.tag ?? null;
    } catch {
      return null;
    }
  };
  if (existsSync(path.join(srcDir, '.git')) && existsSync(path.join(srcDir, 'CMakeLists.txt'))) {
    const head = await run(tools.git, ['-C', srcDir, 'rev-parse', 'HEAD']);
    if (head.code === 0) {
      log(`reusing llama.cpp source from an earlier run (${head.stdout.trim().slice(0, 12)})`);
      return { srcDir, release: readRelease() };
    }
  }
  rmSync(srcDir, { recursive: true, force: true });
  const packDir = path.join(work, 'pack');
  rmSync(packDir, { recursive: true, force: true });
  mkdirSync(packDir, { recursive: true });

  log(`npm pack node-llama-cpp@${NODE_LLAMA_CPP_VERSION} (~35 MB; it ships llama.cpp as a git bundle)`);
  const res = await run(tools.npm, ['pack', `node-llama-cpp@${NODE_LLAMA_CPP_VERSION}`, '--pack-destination', packDir, '--json', '--loglevel=error'], {
    cwd: packDir,
    timeoutMs: 10 * 60_000,
  });
  if (res.code !== 0) {
    throw new SetupError(
      `npm pack node-llama-cpp@${NODE_LLAMA_CPP_VERSION} failed — is the npm registry reachable?\n` +
        res.stderr
          .trim()
          .split('\n')
          .filter((l) => !/^npm error\s+at /.test(l))
          .slice(-12)
          .join('\n'),
    );
  }
  let tgz: string;
  try {
    const parsed = JSON.parse(res.stdout) as Array<{ filename: string }>;
    tgz = path.join(packDir, parsed[0]?.filename ?? '');
  } catch {
    tgz = path.join(packDir, `node-llama-cpp-${NODE_LLAMA_CPP_VERSION}.tgz`);
  }
  if (!existsSync(tgz)) throw new SetupError(`npm pack did not produce ${tgz}`);

  log('extracting the llama.cpp git bundle');
  await runChecked('extracting the npm tarball', tools.tar, ['-xzf', tgz, '-C', packDir, 'package/llama/gitRelease.bundle', 'package/llama/llama.cpp.info.json']);
  copyFileSync(path.join(packDir, 'package/llama/llama.cpp.info.json'), infoCopy);

  log('cloning llama.cpp from the bundle');
  await runChecked('git clone of the llama.cpp bundle', tools.git, [
    '-c',
    'advice.detachedHead=false',
    'clone',
    '--quiet',
    path.join(packDir, 'package/llama/gitRelease.bundle'),
    srcDir,
  ]);
  rmSync(packDir, { recursive: true, force: true });
  return { srcDir, release: readRelease() };
}

async function build(tools: Tools, srcDir: string, buildDir: string, logFile: string): Promise<void> {
  const jobs = Number(process.env.SWITCHYARD_E2E_JOBS ?? '') || os.availableParallelism();
  const logLines: string[] = [];
  const flushLog = (): void => writeFileSync(logFile, `${logLines.join('\n')}\n`);

  if (!existsSync(path.join(buildDir, 'CMakeCache.txt'))) {
    log(`cmake configure (${CMAKE_FLAGS.join(' ')})`);
    try {
      await runChecked('cmake configure', tools.cmake, ['-S', srcDir, '-B', buildDir, ...CMAKE_FLAGS], {
        onLine: (l) => logLines.push(l),
        env: { ...process.env, CC: tools.cc, CXX: tools.cxx },
        timeoutMs: 10 * 60_000,
      });
    } finally {
      flushLog();
    }
  } else {
    log('reusing the cmake build tree from an earlier run');
  }

  log(`compiling ${BUILD_TARGETS.join(' + ')} with -j${jobs} (about 8 minutes on 2 cores; log: ${logFile})`);
  let lastPct = -1;
  let lastReport = Date.now();
  try {
    await runChecked('cmake build', tools.cmake, ['--build', buildDir, '--config', 'Release', '-j', String(jobs), '--target', ...BUILD_TARGETS], {
      timeoutMs: 90 * 60_000,
      onLine: (line) => {
        logLines.push(line);
        const m = /^\[\s*(\d+)%\]\s+(.*)$/.exec(line);
        if (m === null) return;
        const pct = Number(m[1]);
        const now = Date.now();
        if (pct >= lastPct + 10 || now - lastReport > 60_000) {
          lastPct = pct;
          lastReport = now;
          log(`  build ${String(pct).padStart(3)}%  ${(m[2] ?? '').slice(0, 100)}`);
        }
      },
    });
  } finally {
    flushLog();
  }
}

async function makeModel(convertBin: string, srcDir: string, work: string, modelsDir: string): Promise<string> {
  const vocab = path.join(srcDir, 'models', 'ggml-vocab-llama-spm.gguf');
  if (!existsSync(vocab)) throw new SetupError(`vocab file not found in the llama.cpp tree: ${vocab}`);
  const ckpt = path.join(work, `${TINY_MODEL.name}.bin`);
  const bytes = writeLlama2cCheckpoint(ckpt, TINY_MODEL);
  log(`wrote llama2.c checkpoint (${(bytes / 1e6).toFixed(1)} MB, seed 0x${TINY_MODEL.seed.toString(16)})`);

  mkdirSync(modelsDir, { recursive: true });
  const out = path.join(modelsDir, MODEL_FILE);
  const tmp = `${out}.tmp-${process.pid}`;
  log('converting it to GGUF with llama-convert-llama2c-to-ggml');
  await runChecked('llama-convert-llama2c-to-ggml', convertBin, ['--copy-vocab-from-model', vocab, '--llama2c-model', ckpt, '--llama2c-output-model', tmp], {
    cwd: work,
    timeoutMs: 5 * 60_000,
  });
  const { before } = patchGgufU32(tmp, 'llama.context_length', TINY_MODEL.contextLength);
  log(`patched llama.context_length ${before} -> ${TINY_MODEL.contextLength}`);
  renameSync(tmp, out);
  rmSync(ckpt, { force: true });
  return out;
}

// ---------------------------------------------------------------------- main

async function main(): Promise<void> {
  await setupLlama();
  await ensureAgentClients();
}

async function setupLlama(): Promise<void> {
  const t0 = Date.now();
  const dir = cacheDir();
  log(`cache: ${dir}`);

  const force = envFlag('SWITCHYARD_E2E_FORCE');
  if (!force) {
    const existing = await checkExisting(dir);
    if (typeof existing !== 'string') {
      log(`up to date: ${existing.serverVersion}, model ${path.basename(existing.modelPath)}`);
      log(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      return;
    }
    log(`building (${existing})`);
  }

  const lock = await acquireLock(path.join(cacheRoot(), `${cacheKey()}.lock`), {
    timeoutMs: 60 * 60_000,
    onWait: (h) => log(`another setup (pid ${h.pid}, since ${h.since}) holds the lock; waiting for it`),
  });
  try {
    if (!force) {
      const again = await checkExisting(dir);
      if (typeof again !== 'string') {
        log('another setup finished the cache meanwhile; up to date');
        return;
      }
    }

    const tools = await preflight();
    const work = path.join(dir, 'work');
    const binDir = path.join(dir, 'bin');
    mkdirSync(work, { recursive: true });
    mkdirSync(binDir, { recursive: true });

    const { srcDir, release } = await fetchSource(tools, work);
    const commit = (await runChecked('git rev-parse', tools.git, ['-C', srcDir, 'rev-parse', 'HEAD'])).stdout.trim();
    log(`llama.cpp ${release ?? '(unknown release)'} commit ${commit.slice(0, 12)}`);

    const buildDir = path.join(work, 'build');
    const tb = Date.now();
    await build(tools, srcDir, buildDir, path.join(work, 'build.log'));
    const buildSeconds = Math.round((Date.now() - tb) / 1000);
    log(`build finished in ${buildSeconds} s`);

    const installed: Record<string, string> = {};
    for (const target of BUILD_TARGETS) {
      const built = path.join(buildDir, 'bin', target);
      if (!existsSync(built)) throw new SetupError(`build did not produce ${built}`);
      const dest = path.join(binDir, target);
      const tmp = `${dest}.tmp-${process.pid}`;
      copyFileSync(built, tmp);
      chmodSync(tmp, 0o755);
      renameSync(tmp, dest);
      installed[target] = dest;
    }
    const serverBin = installed['llama-server'] ?? '';
    const convertBin = installed['llama-convert-llama2c-to-ggml'] ?? '';

    const ver = await runChecked('llama-server --version', serverBin, ['--version'], { timeoutMs: 20_000 });
    const serverVersion = serverVersionLine(`${ver.stdout}\n${ver.stderr}`);
    log(`llama-server runs: ${serverVersion}`);

    const modelPath = await makeModel(convertBin, srcDir, work, path.join(dir, 'models'));
    const modelSha256 = sha256File(modelPath);
    const modelBytes = statSync(modelPath).size;
    const ctx = readGgufU32(modelPath, 'llama.context_length');
    log(`model ${modelPath} (${(modelBytes / 1e6).toFixed(1)} MB, sha256 ${modelSha256.slice(0, 16)}…)`);
    if (modelSha256 !== EXPECTED_MODEL_SHA256) {
      log(`  note: expected sha256 ${EXPECTED_MODEL_SHA256.slice(0, 16)}… — the model is not byte-identical to the recorded one (fine for tests, but fixtures may differ)`);
    }

    const manifest: E2eManifest = {
      recipeVersion: RECIPE_VERSION,
      nodeLlamaCppVersion: NODE_LLAMA_CPP_VERSION,
      llamaCppRelease: release,
      llamaCppCommit: commit,
      serverVersion,
      serverBin,
      convertBin,
      modelPath,
      modelSha256,
      modelBytes,
      modelContextLength: ctx ?? -1,
      cmakeFlags: [...CMAKE_FLAGS],
      buildSeconds,
      createdAt: new Date().toISOString(),
    };
    const mfile = manifestPath(dir);
    writeFileSync(`${mfile}.tmp`, `${JSON.stringify(manifest, null, 2)}\n`);
    renameSync(`${mfile}.tmp`, mfile);
    log(`wrote ${mfile}`);

    if (envFlag('SWITCHYARD_E2E_KEEP_BUILD')) {
      log(`keeping the build tree in ${work}`);
    } else {
      rmSync(work, { recursive: true, force: true });
      log('removed the build tree (set SWITCHYARD_E2E_KEEP_BUILD=1 to keep it)');
    }
    log(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    lock.release();
  }
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`\n[e2e:setup] ${sig}: stopping the build; the next run resumes from ${path.join(cacheDir(), 'work')}\n`);
    killRunningChildren('SIGTERM');
    process.exit(130); // 'exit' handlers release the lock
  });
}

main().catch((err: unknown) => {
  const msg = err instanceof SetupError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`\n[e2e:setup] FAILED: ${msg}\n`);
  if (existsSync(path.join(cacheDir(), 'work'))) {
    process.stderr.write(`[e2e:setup] the partial work stays in ${path.join(cacheDir(), 'work')} and is reused by the next run; delete ${cacheDir()} to start clean\n`);
  }
  process.exitCode = 1;
});
