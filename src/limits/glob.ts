/** Model-name globs (`*`, `prefix-*`, `*-instruct`), compiled once to a RegExp. */

/** A compiled list of globs: true when any matches. */
export type ModelMatcher = (model: string) => boolean;

const escapeRegExp = (text: string) => text.replace(/[.+?^${}()|[\]\\]/g, '\\$&');

/** Compiles globs; `*` matches any run of characters (including `/`), all else is literal. */
export function compileModelGlobs(globs: readonly string[]): ModelMatcher {
  if (globs.includes('*')) return () => true;
  if (globs.length === 0) return () => false;
  const pattern = new RegExp(`^(?:${globs.map((glob) => glob.split('*').map(escapeRegExp).join('.*')).join('|')})$`);
  return (model) => pattern.test(model);
}
