import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsOptional, IsString } from 'class-validator';
import { InvalidInput } from './errors.js';
import { NAME_PATTERN, IsIntIn } from './validators.js';

export const MAX_PAGE = 1000;

/**
 * A query value that spells an integer (`"20"`, `"-1"`) as that number; anything else
 * (`"abc"`, `"1.5"`, `"1e3"`, `""`, a repeated parameter) is left as it is, for the
 * validator to refuse with its one message.
 */
export const QueryInt = () =>
  Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' && /^-?\d{1,15}$/.test(value) ? Number(value) : value,
  );

/** Keyset pagination over names: `?limit=&cursor=`; `nextCursor` is null on the last page. */
export class PageQuery {
  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 100 })
  @IsOptional()
  @QueryInt()
  @IsIntIn(1, MAX_PAGE)
  limit?: number;

  @ApiPropertyOptional({ description: 'opaque cursor from the previous page' })
  @IsOptional()
  @IsString()
  cursor?: string;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

const FOREIGN_CURSOR = 'cursor is not one this API issued: pass a nextCursor as it was given';

/**
 * The name a cursor continues after. Lists are in name order, so a cursor this API issued
 * holds a name: anything else (including text PostgreSQL would refuse) is a 400 naming
 * `cursor`, before any query.
 */
export function decodeCursor(
  cursor: string | undefined,
  /** What the list's key looks like (lists not in name order: floating IPs by address). */
  isKey: (s: string) => boolean = (s) => NAME_PATTERN.test(s),
): string | null {
  if (!cursor) return null;
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { after?: unknown };
    if (typeof v?.after === 'string' && isKey(v.after)) return v.after;
  } catch {
    // fall through
  }
  throw InvalidInput.field('cursor', FOREIGN_CURSOR);
}

/** `rows` were fetched with `limit + 1`: the extra row says there is a next page. */
export function toPage<R, T>(
  rows: R[],
  limit: number,
  map: (r: R) => T,
  key: (r: R) => string = (r) => (r as { name: string }).name,
): Page<T> {
  const more = rows.length > limit;
  const items = (more ? rows.slice(0, limit) : rows).map(map);
  const last = more ? rows[limit - 1] : undefined;
  return {
    items,
    nextCursor: last
      ? Buffer.from(JSON.stringify({ after: key(last) })).toString('base64url')
      : null,
  };
}
