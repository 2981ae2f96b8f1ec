import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Conflict } from '../common/errors.js';
import { CONFIG, type Config, type Range } from '../config/config.js';
import type { Tx } from '../revisions/revision-log.js';
import { give, take, takeLowest, type Space } from './free-ranges.js';

export type PoolName = 'vlan' | 'vni';
const COLUMN: Record<PoolName, 'vlan_id' | 'vni'> = { vlan: 'vlan_id', vni: 'vni' };
const LABEL: Record<PoolName, string> = { vlan: 'VLAN id', vni: 'VNI' };

const space = (pool: PoolName): Space => ({
  table: 'free_ids',
  cols: ['pool'],
  types: ['text'],
  key: [pool],
});

export interface PoolUsage {
  start: number;
  end: number;
  size: number;
  used: number;
  free: number;
  /** Ids taken explicitly outside the configured range. */
  usedOutsideRange: number;
}

/**
 * The VLAN and VNI pools. Their free ids are kept as ranges (`free_ids`, see
 * free-ranges.ts): allocation takes the lowest, O(log n) whatever the pool's size. Every
 * change locks the pool's row for the rest of the transaction, so concurrent network
 * creates take distinct ids; the unique columns are the backstop.
 */
@Injectable()
export class PoolsService {
  private readonly log = new Logger('pools');

  constructor(
    private readonly ds: DataSource,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  /**
   * Applies configured ranges at start; allocations already made are kept. A changed range
   * rebuilds the pool's free ranges (one pass over the networks, under the pool's lock, so
   * replicas starting together and concurrent allocations see one consistent pool).
   */
  async applyConfiguredRanges(): Promise<void> {
    const ranges: [PoolName, Range | undefined][] = [
      ['vlan', this.config.vlanPool],
      ['vni', this.config.vniPool],
    ];
    for (const [name, range] of ranges) {
      if (!range) continue;
      await this.ds.transaction(async (m) => {
        const [cur] = await m.query<{ range_start: number; range_end: number }[]>(
          'SELECT range_start, range_end FROM pools WHERE name = $1 FOR UPDATE',
          [name],
        );
        if (cur.range_start === range.start && cur.range_end === range.end) return;
        await m.query('UPDATE pools SET range_start = $2, range_end = $3 WHERE name = $1', [
          name,
          range.start,
          range.end,
        ]);
        await m.query('DELETE FROM free_ids WHERE pool = $1', [name]);
        await m.query(
          `INSERT INTO free_ids (pool, lo, hi)
           SELECT $1, p + 1, nxt - 1 FROM (
             SELECT p, lead(p) OVER (ORDER BY p) AS nxt FROM (
               SELECT $2::bigint - 1 AS p UNION SELECT $3::bigint + 1
               UNION SELECT ${COLUMN[name]} FROM networks WHERE ${COLUMN[name]} BETWEEN $2 AND $3
             ) taken
           ) g WHERE nxt - p > 1`,
          [name, range.start, range.end],
        );
      });
      this.log.log(`${name} pool: ${range.start}-${range.end}`);
    }
  }

  /** Locks the pool's row for the rest of the transaction; returns its range. */
  private async lock(tx: Tx, pool: PoolName): Promise<{ start: number; end: number }> {
    const [range] = await tx.query<{ range_start: number; range_end: number }>(
      'SELECT range_start, range_end FROM pools WHERE name = $1 FOR UPDATE',
      [pool],
    );
    return { start: range.range_start, end: range.range_end };
  }

  /** The lowest free id of the pool (two statements); 409 when the pool is exhausted. */
  async allocate(tx: Tx, pool: PoolName): Promise<number> {
    const range = await this.lock(tx, pool);
    const [id] = await takeLowest(tx, space(pool), 1);
    if (id === undefined)
      throw new Conflict(`the ${pool.toUpperCase()} pool ${range.start}-${range.end} is exhausted`);
    return id;
  }

  /**
   * An id asked for explicitly: taken from the pool when inside its range; 409 when used.
   * Outside the range it is honoured as is (the unique column is the check).
   */
  async claim(tx: Tx, pool: PoolName, id: number): Promise<number> {
    const range = await this.lock(tx, pool);
    if (id < range.start || id > range.end) return id;
    if ((await take(tx, space(pool), [id])).length === 0)
      throw new Conflict(`${LABEL[pool]} ${id} is already used by another network`);
    return id;
  }

  /** Gives a deleted network's id back to the pool (when inside its range). */
  async release(tx: Tx, pool: PoolName, id: number): Promise<void> {
    const range = await this.lock(tx, pool);
    if (id >= range.start && id <= range.end) await give(tx, space(pool), id);
  }

  async usage(): Promise<Record<PoolName, PoolUsage>> {
    const rows = await this.ds.query<
      { name: PoolName; range_start: number; range_end: number; inside: string; outside: string }[]
    >(
      `SELECT p.name, p.range_start, p.range_end,
              count(n.id) FILTER (WHERE n.v BETWEEN p.range_start AND p.range_end) AS inside,
              count(n.id) FILTER (WHERE n.v NOT BETWEEN p.range_start AND p.range_end) AS outside
         FROM pools p
         LEFT JOIN (SELECT id, 'vlan' AS pool, vlan_id AS v FROM networks WHERE vlan_id IS NOT NULL
                    UNION ALL SELECT id, 'vni', vni FROM networks WHERE vni IS NOT NULL) n ON n.pool = p.name
        GROUP BY p.name, p.range_start, p.range_end`,
    );
    const out = {} as Record<PoolName, PoolUsage>;
    for (const r of rows) {
      const size = r.range_end - r.range_start + 1;
      const used = Number(r.inside);
      out[r.name] = {
        start: r.range_start,
        end: r.range_end,
        size,
        used,
        free: size - used,
        usedOutsideRange: Number(r.outside),
      };
    }
    return out;
  }
}
