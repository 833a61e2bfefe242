/**
 * config/switchyard.example.yaml documents every option of the schema, with its default.
 *
 * The convention the file follows, and this test checks:
 * - The file as it stands (comments ignored) is a valid config.
 * - An option shown commented out has its `#` in the column where the key goes, then one space:
 *   `  # encryptionKey: ...` under `cache:`. Such a line starts a block; following comment lines in the same
 *   column whose text is indented deeper belong to it (`# redis:` then `#   url: ...`). Deleting the `# ` of one
 *   block must give a valid config too, so any block can be uncommented as it is (a key that is also live, such
 *   as `auth.keys`, is then replaced by the uncommented one).
 * - Every leaf of the schema (arrays of objects are walked through their items, `[]` below) appears live or in
 *   a block; one with a default, unless it is optional, appears somewhere (in one array item at least) with
 *   exactly that default.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { OptionalKind, type TSchema } from '@sinclair/typebox';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.ts';
import { ConfigSchema } from '../../../src/config/schema.ts';

const file = resolve(import.meta.dirname, '../../../config/switchyard.example.yaml');
const text = readFileSync(file, 'utf8');
const lines = text.split('\n');

/** Every `${VAR}` resolves to 64 hex digits: long enough for admin.token, a valid cache key. */
const anyEnv = new Proxy({}, { get: () => '0'.repeat(64) }) as NodeJS.ProcessEnv;

interface Leaf {
  path: string[];
  optional: boolean;
  hasDefault: boolean;
  defaultValue: unknown;
}

interface SchemaNode {
  type?: string;
  properties?: Record<string, TSchema>;
  items?: TSchema;
  default?: unknown;
}

/** The schema's leaves: objects are walked by property, arrays of objects through their items. */
function leavesOf(schema: TSchema, path: string[] = [], optional = false): Leaf[] {
  const node = schema as SchemaNode;
  if (node.type === 'object' && node.properties) {
    return Object.entries(node.properties).flatMap(([key, child]) => leavesOf(child, [...path, key], OptionalKind in child));
  }
  const items = node.items as SchemaNode | undefined;
  if (node.type === 'array' && items?.type === 'object' && items.properties) return leavesOf(node.items as TSchema, [...path, '[]']);
  return [{ path, optional, hasDefault: 'default' in node, defaultValue: node.default }];
}

/** The values at `path` in a parsed document (`[]` steps into every array item). */
function valuesAt(value: unknown, path: string[]): unknown[] {
  const [head, ...rest] = path;
  if (head === undefined) return [value];
  if (head === '[]') return Array.isArray(value) ? value.flatMap((item) => valuesAt(item, rest)) : [];
  if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, head)) return [];
  return valuesAt((value as Record<string, unknown>)[head], rest);
}

interface Block {
  /** 1-based line numbers. */
  first: number;
  last: number;
}

const optionLine = /^(\s*)# ( *)(?:- )?[A-Za-z][A-Za-z0-9]*:(?:\s|$)/;

/** The commented-out options: each starts with a `# key:` line; deeper-indented comment lines continue it. */
function commentedBlocks(): Block[] {
  const blocks: Block[] = [];
  let index = 0;
  while (index < lines.length) {
    const start = optionLine.exec(lines[index] ?? '');
    if (!start) {
      index++;
      continue;
    }
    const column = start[1]?.length ?? 0;
    const depth = start[2]?.length ?? 0;
    let end = index + 1;
    for (; end < lines.length; end++) {
      const line = lines[end] ?? '';
      const continued = /^(\s*)# ( *)\S/.exec(line);
      if (!continued || continued[1]?.length !== column || (continued[2]?.length ?? 0) <= depth) break;
    }
    blocks.push({ first: index + 1, last: end });
    index = end;
  }
  return blocks;
}

/** The file with one block uncommented (`# ` removed at the `#` column). */
function uncommented(block: Block): string {
  return lines
    .map((line, index) => {
      if (index + 1 < block.first || index + 1 > block.last) return line;
      const column = line.indexOf('#');
      return line.slice(0, column) + line.slice(column + 2);
    })
    .join('\n');
}

describe('config/switchyard.example.yaml', () => {
  const live: unknown = parseYaml(text);
  const blocks = commentedBlocks();
  const variants = blocks.map((block) => ({ block, text: uncommented(block) }));

  it('is a valid config as it stands', () => {
    expect(() => validateConfig(live, file, anyEnv)).not.toThrow();
  });

  it('stays a valid config with any one commented-out option uncommented', () => {
    expect(blocks.length).toBeGreaterThan(5);
    for (const { block, text: variant } of variants) {
      const where = `lines ${block.first}-${block.last} uncommented:\n${lines.slice(block.first - 1, block.last).join('\n')}\n`;
      let parsed: unknown;
      expect(() => (parsed = parseYaml(variant, { uniqueKeys: false })), where).not.toThrow();
      expect(() => validateConfig(parsed, file, anyEnv), where).not.toThrow();
    }
  });

  it('shows every option of the schema, with its default', () => {
    const documents = [live, ...variants.map(({ text: variant }) => parseYaml(variant, { uniqueKeys: false }) as unknown)];
    const leaves = leavesOf(ConfigSchema);
    expect(leaves.length).toBeGreaterThan(50);
    const missing: string[] = [];
    const withoutDefault: string[] = [];
    for (const leaf of leaves) {
      const name = leaf.path.join('.').replaceAll('.[]', '[]');
      const values = documents.flatMap((document) => valuesAt(document, leaf.path));
      if (values.length === 0) missing.push(name);
      else if (leaf.hasDefault && !leaf.optional && !values.some((value) => isDeepStrictEqual(value, leaf.defaultValue))) {
        withoutDefault.push(`${name} (default ${JSON.stringify(leaf.defaultValue)}; shown: ${[...new Set(values.map((value) => JSON.stringify(value)))].join(', ')})`);
      }
    }
    // Both lists at once: `missing` needs the option added (live or commented out), `withoutDefault` its default shown.
    expect({ missing, withoutDefault }).toEqual({ missing: [], withoutDefault: [] });
  });

  it('says so in its first line', () => {
    expect(lines[0]).toBe('# Switchyard configuration: every option, with its default.');
  });
});
