/**
 * Rerank: `POST /v1/rerank`, the Jina/Cohere-style shape llama.cpp (`--reranking`) and vLLM (cross-encoder
 * models) serve: `{model, query, documents: [string | {text}], top_n?, return_documents?}` answered by
 * `{model, results: [{index, relevance_score, document?}], usage: {prompt_tokens?, total_tokens}}`
 * (llama.cpp adds `object: "list"`, vLLM an `id`). Passed through natively: there is no translation onto
 * chat, so only backends that serve it get it. Answers are scores, not samples: cacheable like embeddings.
 */
import { openaiErrorRenderer } from '../../errors.ts';
import { spliceTopLevel } from '../../wire/json-splice.ts';
import { IdentityCodec } from '../openai/codec.ts';
import { identityCache } from '../openai/identity.ts';
import { invalid, requireModel, typeName } from '../openai/validate.ts';
import type { Surface } from '../surface.ts';

/** The text of one document (a string, or `{text}` as Cohere and vLLM accept). */
function documentText(document: unknown): string {
  if (typeof document === 'string') return document;
  const text = (document as { text?: unknown } | null)?.text;
  return typeof text === 'string' ? text : '';
}

export const rerank: Surface = {
  name: 'rerank',
  routes: [{ method: 'POST', url: '/v1/rerank' }],
  parse(json) {
    const model = requireModel(json);
    const { query, documents } = json;
    if (query === undefined || query === null) throw invalid('query', "Missing required parameter: 'query'.");
    if (typeof query !== 'string' && typeof query !== 'object') throw invalid('query', `query must be a string, got ${typeName(query)}.`);
    if (!Array.isArray(documents)) throw invalid('documents', `documents must be an array of strings, got ${typeName(documents)}.`);
    if (documents.length === 0) throw invalid('documents', 'documents must not be empty.');
    // Estimates and limits read it like an embeddings request over the query and every document.
    return {
      model,
      stream: false,
      streamUsage: false,
      accounting: { model, input: [documentText(query), ...documents.map(documentText)] },
      promptParam: 'documents',
    };
  },
  capOutput: () => undefined,
  translates: false,
  plan(request, target) {
    const view = request.view;
    const edits = target.model === view.model ? [] : [{ key: 'model', value: target.modelJson, present: true }];
    return {
      path: '/v1/rerank',
      body: spliceTopLevel(request.raw, edits),
      stream: false,
      assemble: undefined,
      codec: new IdentityCodec({
        backendId: target.backend.id,
        publicJson: JSON.stringify(view.model),
        promptParam: 'documents',
        clientWantsUsage: false,
        capture: request.capture,
      }),
      translated: undefined,
    };
  },
  cache: identityCache('rerank', false),
  errors: openaiErrorRenderer,
};
