import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Conflict } from '../common/errors.js';
import { CONFIG, type Config, type Range } from '../config/config.js';
import type { Tx } from '../revisions/revision-log.js';

export type PoolName = 'vlan' | 'vni';
const COLUMN: Record<PoolName, 'vlan_id' | 'vni'> = { vlan: 'vlan_id', vni: 'vni' };

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
 * The VLAN and VNI pools. Allocation locks the pool's row for the rest of the transaction,
 * so concurrent network creates take distinct ids; the unique columns are the backstop.
 */
@Injectable()
export class PoolsService {
  private readonly log = new Logger('pools');

  constructor(
    private readonly ds: DataSource,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  /** Applies configured ranges at start; allocations already made are kept. */
  async applyConfiguredRanges(): Promise<void> {
    const ranges: [PoolName, Range | undefined][] = [
      ['vlan', this.config.vlanPool],
      ['vni', this.config.vniPool],
    ];
    for (const [name, range] of ranges) {
      if (!range) continue;
      await this.ds.query('UPDATE pools SET range_start = $2, range_end = $3 WHERE name = $1', [
        name,
        range.start,
        range.end,
      ]);
      this.log.log(`${name} pool: ${range.start}-${range.end}`);
    }
  }

  /** The lowest free id of the pool; 409 when the pool is exhausted. */
  async allocate(tx: Tx, pool: PoolName): Promise<number> {
    const col = COLUMN[pool];
    const [range] = await tx.query<{ range_start: number; range_end: number }>(
      'SELECT range_start, range_end FROM pools WHERE name = $1 FOR UPDATE',
      [pool],
    );
    const [free] = await tx.query<{ id: number }>(
      `SELECT c AS id FROM (
         SELECT $1::int AS c UNION ALL SELECT ${col} + 1 FROM networks WHERE ${col} BETWEEN $1 AND $2
       ) cand
       WHERE c BETWEEN $1 AND $2 AND NOT EXISTS (SELECT 1 FROM networks n WHERE n.${col} = cand.c)
       ORDER BY c LIMIT 1`,
      [range.range_start, range.range_end],
    );
    if (!free)
      throw new Conflict(
        `the ${pool.toUpperCase()} pool ${range.range_start}-${range.range_end} is exhausted`,
      );
    return free.id;
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
