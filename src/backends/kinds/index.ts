/**
 * The registry of backend kinds: the config schema's `kind` list derives from
 * it, so a new runtime is its file plus one entry here.
 */
import type { BackendKind } from './kind.ts';
import { llamacppKind } from './llamacpp.ts';
import { openaiKind } from './openai.ts';
import { sglangKind } from './sglang.ts';
import { vllmKind } from './vllm.ts';

const kinds = { vllm: vllmKind, llamacpp: llamacppKind, sglang: sglangKind, openai: openaiKind } as const satisfies Record<string, BackendKind>;

/** A config `kind` value. */
export type BackendKindName = keyof typeof kinds;

/** Every kind name, in the order the config documentation lists them. */
export const backendKindNames = Object.keys(kinds) as BackendKindName[];

/** The kind implementation for a config `kind` value. */
export function backendKind(name: BackendKindName): BackendKind {
  return kinds[name];
}
export type { BackendKind, DiscoveredModel, Discovery, HealthVerdict, KindGet, MetricsReader, RuntimeLoad } from './kind.ts';
