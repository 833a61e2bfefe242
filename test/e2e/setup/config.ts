// Shared constants for the real llama.cpp end-to-end setup: where the cache
// lives, what the recipe is, and the shape of manifest.json. Imported by the
// setup script and by test/e2e/helpers/llama-server.ts.

import os from 'node:os';
import path from 'node:path';

/** npm package whose tarball ships the llama.cpp source as a git bundle. */
export const NODE_LLAMA_CPP_VERSION = '3.22.1';

/**
 * Bump whenever the build flags, the tiny model or the manifest change: a new
 * number gives a new cache folder, so old caches are never half-reused.
 */
export const RECIPE_VERSION = 1;

/** Shape of the tiny random-weight llama model (llama2.c checkpoint header). */
export const TINY_MODEL = {
  dim: 64,
  hiddenDim: 172,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 4,
  vocabSize: 32000, // must match models/ggml-vocab-llama-spm.gguf
  seqLen: 512,
  seed: 0x5317c4ad,
  /** Written into the GGUF as llama.context_length (the converter writes 128). */
  contextLength: 8192,
  /** Base name: the converter stores it as general.name. */
  name: 'switchyard-tiny',
} as const;

/** CMake configure flags (besides -S/-B). */
export const CMAKE_FLAGS: readonly string[] = [
  '-DCMAKE_BUILD_TYPE=Release',
  '-DBUILD_SHARED_LIBS=OFF', // self-contained binaries we can copy out of the build tree
  '-DLLAMA_BUILD_TESTS=OFF',
  '-DLLAMA_BUILD_UI=OFF', // no npm build of the web UI
  '-DLLAMA_USE_PREBUILT_UI=OFF', // and no download of a prebuilt one (no internet)
  '-DLLAMA_OPENSSL=OFF',
];

/**
 * sha256 of the finished model file as produced by this recipe; the setup
 * warns (but does not fail) when it gets something else.
 */
export const EXPECTED_MODEL_SHA256 = '812ce7cdc7a4a40efb5fb539130e4790334dd60e408eda91a0bd8f5905536aac';

export const BUILD_TARGETS: readonly string[] = ['llama-server', 'llama-convert-llama2c-to-ggml'];

export interface E2eManifest {
  recipeVersion: number;
  nodeLlamaCppVersion: string;
  llamaCppRelease: string | null;
  llamaCppCommit: string;
  serverVersion: string;
  serverBin: string;
  convertBin: string;
  modelPath: string;
  modelSha256: string;
  modelBytes: number;
  modelContextLength: number;
  cmakeFlags: string[];
  buildSeconds: number;
  createdAt: string;
}

export function cacheRoot(): string {
  const override = process.env.SWITCHYARD_E2E_CACHE;
  if (override !== undefined && override !== '') return path.resolve(override);
  const xdg = process.env.XDG_CACHE_HOME;
  const base = xdg !== undefined && xdg !== '' ? xdg : path.join(os.homedir(), '.cache');
  return path.join(base, 'switchyard-e2e');
}

export function cacheKey(): string {
  return `llamacpp-nlc${NODE_LLAMA_CPP_VERSION}-r${RECIPE_VERSION}-${process.platform}-${process.arch}`;
}

export function cacheDir(): string {
  return path.join(cacheRoot(), cacheKey());
}

export function manifestPath(dir: string = cacheDir()): string {
  return path.join(dir, 'manifest.json');
}
