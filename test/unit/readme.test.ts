/** README documents exactly the errors the catalogue has. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errorCatalogue } from '../../src/errors.ts';

function section(markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  if (start === -1) throw new Error(`README has no "## ${heading}" section`);
  const end = markdown.indexOf('\n## ', start + 4);
  return markdown.slice(start, end === -1 ? undefined : end);
}

describe('README', () => {
  const readme = readFileSync('README.md', 'utf8');

  it('has one error-table row per catalogue entry, with the same status, code and type', () => {
    const rows = section(readme, 'Errors')
      .split('\n')
      .filter((line) => /^\| \d{3} \|/.test(line))
      .map((line) => line.split('|').map((cell) => cell.trim().replace(/`/g, '')))
      .map(([, status, code, type, name]) => ({ name, status: Number(status), code, type }));
    const catalogue = Object.entries(errorCatalogue).map(([name, spec]) => ({ name, status: spec.status, code: spec.code, type: spec.type }));
    expect(rows).toEqual(catalogue);
  });

  it('gives the two commands a newcomer needs', () => {
    expect(readme).toContain('npm run demo');
    expect(readme).toContain('npm test');
  });
});
