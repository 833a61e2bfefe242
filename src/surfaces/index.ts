/**
 * Every API surface the gateway serves, in one list: adding a surface is its
 * folder plus one line here.
 */
import { openaiChat } from './openai-chat/surface.ts';
import { openaiCompletions } from './openai-completions/surface.ts';
import { openaiEmbeddings } from './openai-embeddings/surface.ts';
import { rerank } from './rerank/surface.ts';
import type { Surface } from './surface.ts';

export const surfaces: readonly Surface[] = [openaiChat, openaiCompletions, openaiEmbeddings, rerank];
