/**
 * Reads the few gauges the router needs out of a runtime's Prometheus text,
 * without a full parser: one pass over the lines, summing samples of the
 * wanted names across label sets (vLLM labels by model_name and engine).
 */

/** Sums of the wanted metrics; names that were absent are missing. */
export function readGauges(text: string, names: readonly string[]): Map<string, number> {
  const sums = new Map<string, number>();
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    if (text.charCodeAt(start) !== 35) {
      // not a '#' comment line
      for (const name of names) {
        if (!text.startsWith(name, start)) continue;
        const after = text.charCodeAt(start + name.length);
        if (after !== 32 && after !== 123) continue; // ' ' or '{' must follow the exact name
        const line = text.slice(start, end);
        const valueStart = after === 123 ? line.indexOf('}') + 1 : name.length;
        const value = Number.parseFloat(line.slice(valueStart).trim().split(' ')[0] ?? '');
        if (Number.isFinite(value)) sums.set(name, (sums.get(name) ?? 0) + value);
        break;
      }
    }
    start = end + 1;
  }
  return sums;
}
