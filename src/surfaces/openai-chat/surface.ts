/** OpenAI chat completions: `POST /v1/chat/completions`, the identity surface every runtime serves. */
import { identitySurface } from '../openai/identity.ts';

export const openaiChat = identitySurface({
  name: 'chat',
  endpoint: 'chat',
  path: '/v1/chat/completions',
  routes: [{ method: 'POST', url: '/v1/chat/completions' }],
});
