import { NotFoundException } from '@nestjs/common';
import type { EntityManager, EntityTarget, FindOptionsWhere } from 'typeorm';
import { isStorableText } from './text.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Whether a reference is an id. References of this form are always looked up as ids, the
 * rest as names; names of this form are refused (`IsObjectName`), so the two never meet.
 */
export function isUuid(s: string): boolean {
  return UUID.test(s);
}

export type RowLock = 'pessimistic_write' | 'for_no_key_update' | 'pessimistic_read';

/**
 * Finds one object by id or by name (paths and request bodies name related objects either
 * way): by id when `idOrName` has the form of a UUID, by name otherwise (no name has that
 * form); 404 naming what was looked for. A reference PostgreSQL could not even compare (a
 * NUL, an unpaired surrogate) names nothing: 404 without a query (the request pipe
 * refuses such text first; this keeps every caller safe).
 */
export async function findByIdOrName<T extends { id: string; name: string }>(
  m: EntityManager,
  entity: EntityTarget<T>,
  what: string,
  idOrName: string,
  lock?: RowLock,
): Promise<T> {
  if (!isStorableText(idOrName)) {
    throw new NotFoundException(`${what} ${JSON.stringify(idOrName)} not found`);
  }
  const where = (isUuid(idOrName) ? { id: idOrName } : { name: idOrName }) as FindOptionsWhere<T>;
  const row = await m.findOne(entity, { where, ...(lock ? { lock: { mode: lock } } : {}) });
  if (!row) throw new NotFoundException(`${what} "${idOrName}" not found`);
  return row;
}
