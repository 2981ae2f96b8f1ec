import { Injectable, NotFoundException } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { cidrSize, parseCidr } from '../../../../libs/model/src/index.js';
import { Conflict } from '../common/errors.js';
import { findByIdOrName } from '../common/lookup.js';
import { decodeCursor, PageQuery, toPage, type Page } from '../common/pagination.js';
import { FloatingIpPoolEntity } from '../database/entities.js';
import { RevisionLog, type Tx } from '../revisions/revision-log.js';

export interface FloatingIpPoolView {
  id: string;
  name: string;
  cidr: string;
  size: number;
  used: number;
  createdAt: string;
}

/**
 * The addresses of a pool that can be allocated, as integers: all of a /31 or /32, the
 * others but the first and last (a pool cut from the underlay subnet may hold them, but
 * operators expect neither a network nor a broadcast address to be handed out).
 */
export function allocatable(cidr: string): { first: number; last: number } {
  const c = parseCidr(cidr)!;
  const size = cidrSize(c);
  return size <= 2
    ? { first: c.base, last: c.base + size - 1 }
    : { first: c.base + 1, last: c.base + size - 2 };
}

/** A network's CIDR may not overlap a floating IP pool (409), nor a pool a network. */
export async function refuseFloatingOverlap(tx: Tx, cidr: string): Promise<void> {
  const [p] = await tx.query<{ name: string }>(
    'SELECT name FROM floating_ip_pools WHERE cidr && $1::cidr LIMIT 1',
    [cidr],
  );
  if (p) {
    throw new Conflict(`the CIDR overlaps floating IP pool "${p.name}"`, {
      object: 'network',
      field: 'cidr',
      value: cidr,
    });
  }
}

/** A host's underlay address may not be an allocated floating IP (409). */
export async function refuseFloatingAddress(tx: Tx, ip: string): Promise<void> {
  const [f] = await tx.query<{ id: string }>(
    'SELECT id FROM floating_ips WHERE address = $1::inet',
    [ip],
  );
  if (f) {
    throw new Conflict(`${ip} is an allocated floating IP`, {
      object: 'host',
      field: 'underlayIp',
      value: ip,
    });
  }
}

interface PoolRow {
  id: string;
  name: string;
  cidr: string;
  created_at: Date;
  used: number;
}

const SELECT_VIEW = `
  SELECT p.id, p.name, p.cidr::text AS cidr, p.created_at,
         (SELECT count(*)::int FROM floating_ips f WHERE f.pool_id = p.id) AS used
    FROM floating_ip_pools p`;

function poolView(r: PoolRow): FloatingIpPoolView {
  const { first, last } = allocatable(r.cidr);
  return {
    id: r.id,
    name: r.name,
    cidr: r.cidr,
    size: last - first + 1,
    used: r.used,
    createdAt: r.created_at.toISOString(),
  };
}

/**
 * Floating IP pools: controller-side bookkeeping only (no host holds a pool), so their
 * changes record nothing in the revision log; they still commit through it, which orders
 * them with the network creations they must not overlap.
 */
@Injectable()
export class FloatingIpPoolsService {
  constructor(
    private readonly ds: DataSource,
    private readonly revisions: RevisionLog,
  ) {}

  async create(name: string, cidr: string) {
    const { result, revision } = await this.revisions.mutate(
      async (tx) => {
        const [n] = await tx.query<{ name: string }>(
          'SELECT name FROM networks WHERE cidr && $1::cidr ORDER BY name LIMIT 1',
          [cidr],
        );
        if (n) {
          throw new Conflict(`the CIDR overlaps network "${n.name}"`, {
            object: 'floating IP pool',
            field: 'cidr',
            value: cidr,
          });
        }
        const [{ id }] = await tx.query<{ id: string }>(
          'INSERT INTO floating_ip_pools (name, cidr) VALUES ($1, $2) RETURNING id',
          [name, cidr],
        );
        return id;
      },
      (m, id) => this.get(id, m),
    );
    return { ...result, revision };
  }

  async get(idOrName: string, m: EntityManager = this.ds.manager): Promise<FloatingIpPoolView> {
    const p = await findByIdOrName(m, FloatingIpPoolEntity, 'floating IP pool', idOrName);
    const [row] = await m.query<PoolRow[]>(`${SELECT_VIEW} WHERE p.id = $1`, [p.id]);
    if (!row) throw new NotFoundException(`floating IP pool "${idOrName}" not found`);
    return poolView(row);
  }

  async list(q: PageQuery): Promise<Page<FloatingIpPoolView>> {
    const limit = q.limit ?? 100;
    const after = decodeCursor(q.cursor);
    const rows = await this.ds.query<PoolRow[]>(
      `${SELECT_VIEW} ${after !== null ? 'WHERE p.name > $2' : ''} ORDER BY p.name LIMIT $1`,
      after !== null ? [limit + 1, after] : [limit + 1],
    );
    return toPage(rows, limit, poolView);
  }

  /** 409 while floating IPs of the pool exist. */
  async delete(idOrName: string) {
    const { result, revision } = await this.revisions.mutate(async (tx) => {
      const p = await findByIdOrName(
        tx.manager,
        FloatingIpPoolEntity,
        'floating IP pool',
        idOrName,
        'pessimistic_write',
      );
      const [{ used }] = await tx.query<{ used: number }>(
        'SELECT count(*)::int AS used FROM floating_ips WHERE pool_id = $1',
        [p.id],
      );
      if (used > 0) {
        throw new Conflict(
          `floating IP pool "${p.name}" still has ${used} floating IP(s); delete them first`,
        );
      }
      await tx.query('DELETE FROM floating_ip_pools WHERE id = $1', [p.id]);
      return { id: p.id, name: p.name };
    });
    return { ...result, deleted: true as const, revision };
  }
}
