import { Injectable, NotFoundException } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { intToIp, ipToInt, isIpv4, type FloatingIp } from '../../../../libs/model/src/index.js';
import { Conflict, InvalidInput } from '../common/errors.js';
import { findByIdOrName, isUuid } from '../common/lookup.js';
import { decodeCursor, PageQuery, toPage, type Page } from '../common/pagination.js';
import { FloatingIpPoolEntity, InstanceEntity } from '../database/entities.js';
import { RevisionLog, type Tx } from '../revisions/revision-log.js';
import type { CreateFloatingIpDto } from './floating-ip.dto.js';
import { allocatable } from './floating-ip-pools.service.js';

export interface FloatingIpView {
  id: string;
  address: string;
  poolId: string;
  pool: string;
  instanceId: string | null;
  instance: string | null;
  host: string | null;
  revision: number;
  createdAt: string;
}

interface FloatingIpRow {
  id: string;
  address: string;
  pool_id: string;
  pool: string;
  instance_id: string | null;
  instance: string | null;
  host: string | null;
  revision: string;
  created_at: Date;
}

const SELECT_VIEW = `
  SELECT f.id, host(f.address) AS address, f.pool_id, p.name AS pool, f.instance_id,
         i.name AS instance, h.name AS host, f.revision, f.created_at
    FROM floating_ips f JOIN floating_ip_pools p ON p.id = f.pool_id
    LEFT JOIN instances i ON i.id = f.instance_id LEFT JOIN hosts h ON h.id = i.host_id`;

function floatingIpView(r: FloatingIpRow): FloatingIpView {
  return {
    id: r.id,
    address: r.address,
    poolId: r.pool_id,
    pool: r.pool,
    instanceId: r.instance_id,
    instance: r.instance,
    host: r.host,
    revision: Number(r.revision),
    createdAt: r.created_at.toISOString(),
  };
}

/** `WHERE` for a floating IP named by id or address; null when it can name none. */
function whereRef(ref: string): { sql: string; value: string } | null {
  if (isUuid(ref)) return { sql: 'f.id = $1', value: ref };
  if (isIpv4(ref)) return { sql: 'f.address = $1::inet', value: ref };
  return null;
}

const notFound = (ref: string) =>
  new NotFoundException(`floating IP ${JSON.stringify(ref)} not found`);

/**
 * The lowest allocatable address of the pool that is neither a floating IP nor a host's
 * underlay address: the candidates are the pool's first address and the one after each
 * used address (one pass over the pool's used addresses, by the pool_id/address index; a
 * pool is at most a /16).
 */
const LOWEST_FREE = `
  WITH used AS (
    SELECT address AS a FROM floating_ips WHERE pool_id = $1
    UNION SELECT set_masklen(underlay_ip, 32) FROM hosts WHERE underlay_ip <<= $2::cidr
  )
  SELECT host(min(c.a)) AS address
    FROM (SELECT $3::inet AS a UNION ALL SELECT a + 1 FROM used) c
   WHERE c.a <= $4::inet AND c.a >= $3::inet AND NOT EXISTS (SELECT 1 FROM used u WHERE u.a = c.a)`;

/**
 * Floating IPs: one external address of a pool, bound to at most one instance. Bound, the
 * address lives on the instance's host (a `fip` resource: libs/engine/src/egress.ts) and
 * follows the instance when it moves; deleting the instance unbinds it (the engine does the
 * same on `instance.delete`, and the database's ON DELETE SET NULL).
 */
@Injectable()
export class FloatingIpsService {
  constructor(
    private readonly ds: DataSource,
    private readonly revisions: RevisionLog,
  ) {}

  async create(dto: CreateFloatingIpDto) {
    const { result, revision } = await this.revisions.mutate(
      async (tx) => {
        const pool = await findByIdOrName(
          tx.manager,
          FloatingIpPoolEntity,
          'floating IP pool',
          dto.pool,
          'for_no_key_update',
        );
        const address =
          dto.address === undefined
            ? await this.lowestFree(tx, pool)
            : await this.claimable(tx, pool, dto.address);
        const instanceId = await this.instanceId(tx, dto.instance ?? null);
        const [{ id }] = await tx.query<{ id: string }>(
          `INSERT INTO floating_ips (address, pool_id, instance_id, revision)
           VALUES ($1::inet, $2, $3, 0) RETURNING id`,
          [address, pool.id, instanceId],
        );
        this.record(tx, { id, address, poolId: pool.id, instanceId });
        return id;
      },
      (m, id) => this.get(id, m),
    );
    return { ...result, revision };
  }

  /** Binds it to an instance, rebinds it to another, or (`instance: null`) unbinds it. */
  async update(ref: string, instance: string | null) {
    const { result, revision } = await this.revisions.mutate(
      async (tx) => {
        const f = await this.lock(tx, ref);
        const instanceId = await this.instanceId(tx, instance);
        if (instanceId !== f.instanceId) {
          await tx.query('UPDATE floating_ips SET instance_id = $2 WHERE id = $1', [
            f.id,
            instanceId,
          ]);
          this.record(tx, { ...f, instanceId });
        }
        return f.id;
      },
      (m, id) => this.get(id, m),
    );
    return { ...result, revision };
  }

  async delete(ref: string) {
    const { result, revision } = await this.revisions.mutate(async (tx) => {
      const f = await this.lock(tx, ref);
      await tx.query('DELETE FROM floating_ips WHERE id = $1', [f.id]);
      tx.record({ type: 'floatingip.delete', id: f.id });
      return { id: f.id, name: f.address };
    });
    return { ...result, deleted: true as const, revision };
  }

  async get(ref: string, m: EntityManager = this.ds.manager): Promise<FloatingIpView> {
    const w = whereRef(ref);
    if (!w) throw notFound(ref);
    const [row] = await m.query<FloatingIpRow[]>(`${SELECT_VIEW} WHERE ${w.sql}`, [w.value]);
    if (!row) throw notFound(ref);
    return floatingIpView(row);
  }

  /** In address order; `pool` filters by pool (id or name). */
  async list(q: PageQuery & { pool?: string }): Promise<Page<FloatingIpView>> {
    const limit = q.limit ?? 100;
    const after = decodeCursor(q.cursor, isIpv4);
    const where: string[] = [];
    const params: unknown[] = [limit + 1];
    if (after !== null) {
      params.push(after);
      where.push(`f.address > $${params.length}::inet`);
    }
    if (q.pool !== undefined) {
      const pool = await findByIdOrName(
        this.ds.manager,
        FloatingIpPoolEntity,
        'floating IP pool',
        q.pool,
      );
      params.push(pool.id);
      where.push(`f.pool_id = $${params.length}`);
    }
    const rows = await this.ds.query<FloatingIpRow[]>(
      `${SELECT_VIEW} ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY f.address LIMIT $1`,
      params,
    );
    return toPage(rows, limit, floatingIpView, (r) => r.address);
  }

  private record(tx: Tx, f: FloatingIp): void {
    tx.record({ type: 'floatingip.upsert', floatingIp: f }, { table: 'floating_ips', id: f.id });
  }

  /** The floating IP, locked for the rest of the transaction. */
  private async lock(tx: Tx, ref: string): Promise<FloatingIp> {
    const w = whereRef(ref);
    if (!w) throw notFound(ref);
    const [f] = await tx.query<FloatingIp>(
      `SELECT f.id, host(f.address) AS address, f.pool_id AS "poolId", f.instance_id AS "instanceId"
         FROM floating_ips f WHERE ${w.sql} FOR UPDATE`,
      [w.value],
    );
    if (!f) throw notFound(ref);
    return f;
  }

  private async instanceId(tx: Tx, ref: string | null): Promise<string | null> {
    if (ref === null) return null;
    const inst = await findByIdOrName(
      tx.manager,
      InstanceEntity,
      'instance',
      ref,
      'for_no_key_update',
    );
    return inst.id;
  }

  private async lowestFree(tx: Tx, pool: FloatingIpPoolEntity): Promise<string> {
    const { first, last } = allocatable(pool.cidr);
    const [row] = await tx.query<{ address: string | null }>(LOWEST_FREE, [
      pool.id,
      pool.cidr,
      intToIp(first),
      intToIp(last),
    ]);
    if (row?.address == null) {
      throw new Conflict(`floating IP pool "${pool.name}" is exhausted`, {
        object: 'floating IP pool',
        value: pool.name,
      });
    }
    return row.address;
  }

  /** A requested address: inside the pool's allocatable range and no host's. */
  private async claimable(tx: Tx, pool: FloatingIpPoolEntity, address: string): Promise<string> {
    const { first, last } = allocatable(pool.cidr);
    const a = ipToInt(address);
    if (a < first || a > last) {
      throw InvalidInput.field(
        'address',
        `address must be an allocatable address of pool "${pool.name}" (${intToIp(first)} to ${intToIp(last)})`,
      );
    }
    const [h] = await tx.query<{ name: string }>(
      'SELECT name FROM hosts WHERE set_masklen(underlay_ip, 32) = $1::inet',
      [address],
    );
    if (h) {
      throw new Conflict(`${address} is the underlay address of host "${h.name}"`, {
        object: 'floating IP',
        field: 'address',
        value: address,
      });
    }
    return address;
  }
}
