// The tiny random-weight model: a llama2.c checkpoint written from a seeded
// PRNG (byte-reproducible), which llama.cpp's own
// `llama-convert-llama2c-to-ggml` turns into a GGUF, plus a small in-place
// GGUF patch for `llama.context_length` (the converter always writes 128).

import { openSync, readSync, writeSync, closeSync, writeFileSync } from 'node:fs';

export interface LlamaConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  seed: number;
}

/** mulberry32: tiny, fast, deterministic 32-bit PRNG returning [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Build the llama2.c checkpoint bytes: 7 x int32 header, then float32 weights
 * in llama2.c order (embeddings, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3,
 * rms_final, freq_cis real+imag). A positive vocab size means the classifier
 * shares the embedding table, so no wcls block follows.
 */
export function llama2cCheckpoint(cfg: LlamaConfig): Buffer {
  const { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen } = cfg;
  if (dim % nHeads !== 0) throw new Error('dim must be divisible by nHeads');
  const headSize = dim / nHeads;
  const kvDim = (dim * nKvHeads) / nHeads;
  const rand = mulberry32(cfg.seed);
  const uniform = (): number => (rand() * 2 - 1) * 0.05; // U(-0.05, 0.05)

  // [count, kind]: 'r' random, '1' ones (rms norm gains), '0' zeros
  const blocks: Array<[number, 'r' | '1' | '0']> = [
    [vocabSize * dim, 'r'], // token_embedding_table
    [nLayers * dim, '1'], // rms_att_weight
    [nLayers * dim * dim, 'r'], // wq
    [nLayers * dim * kvDim, 'r'], // wk
    [nLayers * dim * kvDim, 'r'], // wv
    [nLayers * dim * dim, 'r'], // wo
    [nLayers * dim, '1'], // rms_ffn_weight
    [nLayers * hiddenDim * dim, 'r'], // w1
    [nLayers * dim * hiddenDim, 'r'], // w2
    [nLayers * hiddenDim * dim, 'r'], // w3
    [dim, '1'], // rms_final_weight
    [seqLen * headSize, '0'], // freq_cis_real + freq_cis_imag (skipped by the converter, but must be there)
  ];
  const nFloats = blocks.reduce((n, [count]) => n + count, 0);
  const buf = Buffer.alloc(7 * 4 + nFloats * 4);
  const header = [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen];
  for (const [i, v] of header.entries()) buf.writeInt32LE(v, i * 4);
  let off = 7 * 4;
  for (const [count, kind] of blocks) {
    for (let i = 0; i < count; i++) {
      const v = kind === 'r' ? uniform() : kind === '1' ? 1 : 0;
      buf.writeFloatLE(v, off);
      off += 4;
    }
  }
  return buf;
}

export function writeLlama2cCheckpoint(file: string, cfg: LlamaConfig): number {
  const buf = llama2cCheckpoint(cfg);
  writeFileSync(file, buf);
  return buf.length;
}

// ---------------------------------------------------------------- GGUF patch

const GGUF_TYPE_SIZES: Record<number, number> = {
  0: 1, // uint8
  1: 1, // int8
  2: 2, // uint16
  3: 2, // int16
  4: 4, // uint32
  5: 4, // int32
  6: 4, // float32
  7: 1, // bool
  10: 8, // uint64
  11: 8, // int64
  12: 8, // float64
};
const GGUF_STRING = 8;
const GGUF_ARRAY = 9;
const GGUF_UINT32 = 4;

/** Sequential reader over a file (the vocab arrays make the header ~1 MB). */
class FileReader {
  private fd: number;
  private buf = Buffer.alloc(0);
  private bufStart = 0; // file offset of buf[0]
  pos = 0;

  constructor(fd: number) {
    this.fd = fd;
  }

  private ensure(n: number): void {
    const have = this.bufStart + this.buf.length - this.pos;
    if (have >= n) return;
    const size = Math.max(n, 1 << 20);
    const chunk = Buffer.alloc(size);
    const got = readSync(this.fd, chunk, 0, size, this.pos);
    if (got < n) throw new Error(`unexpected end of GGUF file at offset ${this.pos}`);
    this.buf = chunk.subarray(0, got);
    this.bufStart = this.pos;
  }

  bytes(n: number): Buffer {
    this.ensure(n);
    const at = this.pos - this.bufStart;
    this.pos += n;
    return this.buf.subarray(at, at + n);
  }

  u32(): number {
    return this.bytes(4).readUInt32LE(0);
  }

  u64(): number {
    return Number(this.bytes(8).readBigUInt64LE(0));
  }

  string(): string {
    const len = this.u64();
    return this.bytes(len).toString('utf8');
  }

  skipValue(type: number): void {
    if (type === GGUF_STRING) {
      this.bytes(this.u64());
      return;
    }
    if (type === GGUF_ARRAY) {
      const elemType = this.u32();
      const count = this.u64();
      if (elemType === GGUF_STRING || elemType === GGUF_ARRAY) {
        for (let i = 0; i < count; i++) this.skipValue(elemType);
      } else {
        const size = GGUF_TYPE_SIZES[elemType];
        if (size === undefined) throw new Error(`unknown GGUF array element type ${elemType}`);
        this.pos += size * count;
      }
      return;
    }
    const size = GGUF_TYPE_SIZES[type];
    if (size === undefined) throw new Error(`unknown GGUF value type ${type}`);
    this.pos += size;
  }
}

/** Find a uint32 metadata key; returns its value and file offset, or null. */
function findU32(fd: number, key: string): { value: number; offset: number } | null {
  const r = new FileReader(fd);
  const magic = r.bytes(4).toString('latin1');
  if (magic !== 'GGUF') throw new Error(`not a GGUF file (magic ${JSON.stringify(magic)})`);
  const version = r.u32();
  if (version < 2) throw new Error(`unsupported GGUF version ${version}`);
  r.u64(); // n_tensors
  const nKv = r.u64();
  for (let i = 0; i < nKv; i++) {
    const k = r.string();
    const type = r.u32();
    if (k === key) {
      if (type !== GGUF_UINT32) throw new Error(`GGUF key ${key} has type ${type}, expected uint32`);
      const offset = r.pos;
      return { value: r.u32(), offset };
    }
    r.skipValue(type);
  }
  return null;
}

export function readGgufU32(file: string, key: string): number | null {
  const fd = openSync(file, 'r');
  try {
    return findU32(fd, key)?.value ?? null;
  } finally {
    closeSync(fd);
  }
}

/** Overwrite a uint32 metadata value in place (the file size does not change). */
export function patchGgufU32(file: string, key: string, value: number): { before: number } {
  const fd = openSync(file, 'r+');
  try {
    const found = findU32(fd, key);
    if (found === null) throw new Error(`GGUF key ${key} not found in ${file}`);
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value >>> 0, 0);
    writeSync(fd, b, 0, 4, found.offset);
    return { before: found.value };
  } finally {
    closeSync(fd);
  }
}
