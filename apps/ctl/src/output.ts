/** How latticectl prints: aligned tables (the default), JSON or YAML. */
import { stringify } from 'yaml';

export type Format = 'table' | 'json' | 'yaml' | 'name';
export const FORMATS: readonly Format[] = ['table', 'json', 'yaml', 'name'];

export interface Column<T> {
  readonly header: string;
  readonly value: (row: T) => unknown;
}

function cell(v: unknown): string {
  if (v === null || v === undefined || v === '') return '-';
  if (Array.isArray(v)) return v.length === 0 ? '-' : v.map(cell).join(',');
  if (typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>);
    return entries.length === 0 ? '-' : entries.map(([k, x]) => `${k}=${cell(x)}`).join(',');
  }
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Columns padded to their widest cell, two spaces apart, like kubectl. */
export function table<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = [
    columns.map((c) => c.header),
    ...rows.map((r) => columns.map((c) => cell(c.value(r)))),
  ];
  const widths = columns.map((_c, i) => Math.max(...cells.map((row) => row[i].length)));
  return cells
    .map((row) =>
      row
        .map((v, i) => (i === row.length - 1 ? v : v.padEnd(widths[i])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function render<T>(
  data: T | readonly T[],
  format: Format,
  columns: readonly Column<T>[],
): string {
  const many = Array.isArray(data);
  switch (format) {
    case 'json':
      return JSON.stringify(data, null, 2);
    case 'yaml':
      return stringify(data).trimEnd();
    case 'name':
      return (many ? (data as T[]) : [data as T])
        .map((r) => {
          const name = (r as { name?: unknown }).name;
          return typeof name === 'string' ? name : '';
        })
        .join('\n');
    case 'table':
      return table(many ? (data as T[]) : [data as T], columns);
  }
}

/** A `key: value` block for describe, nested objects indented (YAML without the quotes). */
export function describeBlock(o: Record<string, unknown>): string {
  return stringify(o, { lineWidth: 0 }).trimEnd();
}
