/**
 * The OpenAI wire format as the gateway handles it: the endpoints whose
 * bodies and streams the helpers in this folder read and edit, and usage.
 * This folder imports nothing else from the gateway, so proxy/, cache/ and
 * surfaces/ can all build on it.
 */

/** Token usage as the OpenAI API reports it (the gateway's accounting unit for every surface). */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cached_tokens?: number;
}

/**
 * An endpoint in the OpenAI conventions (JSON answers with `model` and a `usage` in OpenAI's names): chat and
 * completions (also streamed: the helpers here assemble and replay them), embeddings and rerank (JSON only).
 */
export type Endpoint = 'chat' | 'completion' | 'embedding' | 'rerank';
