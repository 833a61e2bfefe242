/** OpenAI embeddings: `POST /v1/embeddings`, an identity surface (never streamed, never sampled). */
import { identitySurface } from '../openai/identity.ts';

export const openaiEmbeddings = identitySurface({
  name: 'embedding',
  endpoint: 'embedding',
  path: '/v1/embeddings',
  routes: [{ method: 'POST', url: '/v1/embeddings' }],
});
