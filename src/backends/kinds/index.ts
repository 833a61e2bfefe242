import type { BackendKind } from './kind.ts';
import { llamacppKind } from './llamacpp.ts';
import { openaiKind } from './openai.ts';
import { vllmKind } from './vllm.ts';

const kinds: Record<BackendKind['name'], BackendKind> = { vllm: vllmKind, llamacpp: llamacppKind, openai: openaiKind };

/** The kind implementation for a config `kind` value. */
export function backendKind(name: BackendKind['name']): BackendKind {
  return kinds[name];
}
export type { BackendKind, DiscoveredModel, HealthVerdict, RuntimeLoad } from './kind.ts';
