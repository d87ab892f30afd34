/** Readable, aligned tables for the terminal, with each figure marked against its aim. */

export interface Aim {
  /** What the aim says, e.g. "< 250 KB". */
  label: string;
  met: boolean;
}

export function mark(aim: Aim | undefined): string {
  if (!aim) return '';
  return `${aim.met ? 'ok  ' : 'MISS'} (aim ${aim.label})`;
}

export function printTable(title: string, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  console.log(`\n${title}`);
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export const fixed = (n: number, digits = 1) => n.toFixed(digits);
