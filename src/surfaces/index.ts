/**
 * Every API surface the gateway serves, in one list: adding a surface is its
 * folder plus one line here.
 */
import type { Logger } from 'pino';
import { loadEncryptionKey } from '../cache/encryption.ts';
import type { SwitchyardState } from '../state.ts';
import { anthropicCountTokens, anthropicMessages } from './anthropic-messages/surface.ts';
import { openaiChat } from './openai-chat/surface.ts';
import { openaiCompletions } from './openai-completions/surface.ts';
import { openaiEmbeddings } from './openai-embeddings/surface.ts';
import { rerank } from './rerank/surface.ts';
import { ResponseStore } from './responses/store.ts';
import { responsesSurface } from './responses/surface.ts';
import type { Surface } from './surface.ts';

/** The surfaces of one gateway (some keep state of their own, e.g. the Responses store). */
export function createSurfaces(state: SwitchyardState, logger: Logger): Surface[] {
  const { config } = state;
  const responseStore = new ResponseStore(state.redis, {
    keyPrefix: config.redis?.keyPrefix ?? 'swy',
    ttlSeconds: config.responses.storeTtlSeconds,
    tenants: config.tenants,
    encryptionKey: loadEncryptionKey(config.cache),
  });
  return [openaiChat, openaiCompletions, openaiEmbeddings, responsesSurface(responseStore, logger), anthropicMessages, anthropicCountTokens, rerank];
}
