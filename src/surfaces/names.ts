/**
 * The names of the API surfaces: the `endpoint` label of the request metrics, the log field, and the keys
 * of a backend's `surfaces` config. Kept apart from the surfaces themselves so the config schema and the
 * backend kinds can name them without importing the pipeline.
 */
export const surfaceNames = ['chat', 'completion', 'embedding', 'responses', 'messages', 'rerank'] as const;

/** One surface's name. */
export type SurfaceName = (typeof surfaceNames)[number];
