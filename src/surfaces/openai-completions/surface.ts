/** OpenAI (legacy) completions: `POST /v1/completions`, an identity surface. */
import { identitySurface } from '../openai/identity.ts';

export const openaiCompletions = identitySurface({
  name: 'completion',
  endpoint: 'completion',
  path: '/v1/completions',
  routes: [{ method: 'POST', url: '/v1/completions' }],
});
