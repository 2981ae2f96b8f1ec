import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { isBlockBased, type Router } from '../../../../libs/model/src/index.js';
import { InvalidInput } from '../common/errors.js';
import { findByIdOrName, isUuid } from '../common/lookup.js';
import { decodeCursor, PageQuery, toPage, type Page } from '../common/pagination.js';
import { NetworkEntity, RouterEntity } from '../database/entities.js';
import { RevisionLog, type Tx } from '../revisions/revision-log.js';
import type { UpdateRouterDto } from './router.dto.js';

export interface RouterView extends Router {
  networks: string[];
  revision: number;
  createdAt: string;
}

interface RouterRow {
  id: string;
  name: string;
  revision: string;
  created_at: Date;
  network_ids: string[];
  network_names: string[];
}

const SELECT_VIEW = `
  SELECT r.id, r.name, r.revision, r.created_at,
         coalesce(array_agg(n.id ORDER BY n.name) FILTER (WHERE n.id IS NOT NULL), '{}') AS network_ids,
         coalesce(array_agg(n.name ORDER BY n.name) FILTER (WHERE n.id IS NOT NULL), '{}') AS network_names
    FROM routers r LEFT JOIN router_networks rn ON rn.router_id = r.id LEFT JOIN networks n ON n.id = rn.network_id`;

function routerView(r: RouterRow): RouterView {
  return {
    id: r.id,
    name: r.name,
    networkIds: r.network_ids,
    networks: r.network_names,
    revision: Number(r.revision),
    createdAt: r.created_at.toISOString(),
  };
}

@Injectable()
export class RoutersService {
  constructor(
    private readonly ds: DataSource,
    private readonly revisions: RevisionLog,
  ) {}

  async create(name: string, networks: string[] = []) {
    const { result, revision } = await this.revisions.mutate(
      async (tx) => {
        const [{ id }] = await tx.query<{ id: string }>(
          'INSERT INTO routers (name, revision) VALUES ($1, 0) RETURNING id',
          [name],
        );
        await this.setNetworks(tx, id, name, [], await this.resolve(tx, networks));
        return id;
      },
      (m, id) => this.get(id, m),
    );
    return { ...result, revision };
  }

  async update(idOrName: string, dto: UpdateRouterDto) {
    if (dto.networks !== undefined && (dto.attach !== undefined || dto.detach !== undefined)) {
      throw InvalidInput.field(
        'networks',
        'give either networks (the whole set) or attach/detach, not both',
      );
    }
    const { result, revision } = await this.revisions.mutate(
      async (tx) => {
        const { r, current } = await this.lockRouter(tx, idOrName);
        let next: string[];
        if (dto.networks !== undefined) next = await this.resolve(tx, dto.networks);
        else {
          const attach = await this.resolve(tx, dto.attach ?? []);
          const detach = new Set(await this.resolve(tx, dto.detach ?? []));
          next = [...new Set([...current, ...attach])].filter((id) => !detach.has(id));
        }
        await this.setNetworks(tx, r.id, r.name, current, next);
        return r.id;
      },
      (m, id) => this.get(id, m),
    );
    return { ...result, revision };
  }

  async delete(idOrName: string) {
    const { result, revision } = await this.revisions.mutate(async (tx) => {
      const { r, current } = await this.lockRouter(tx, idOrName);
      await this.setNetworks(tx, r.id, r.name, current, [], true);
      await tx.query('DELETE FROM routers WHERE id = $1', [r.id]);
      tx.record({ type: 'router.delete', id: r.id });
      return { id: r.id, name: r.name };
    });
    return { ...result, deleted: true, revision };
  }

  async get(idOrName: string, m: EntityManager = this.ds.manager): Promise<RouterView> {
    const rows = await m.query<RouterRow[]>(
      `${SELECT_VIEW} WHERE r.${isUuid(idOrName) ? 'id' : 'name'} = $1 GROUP BY r.id`,
      [idOrName],
    );
    if (rows.length === 0) await findByIdOrName(m, RouterEntity, 'router', idOrName); // 404
    return routerView(rows[0]);
  }

  async list(q: PageQuery): Promise<Page<RouterView>> {
    const limit = q.limit ?? 100;
    const after = decodeCursor(q.cursor);
    const rows = await this.ds.query<RouterRow[]>(
      `${SELECT_VIEW} ${after !== null ? 'WHERE r.name > $2' : ''} GROUP BY r.id ORDER BY r.name LIMIT $1`,
      after !== null ? [limit + 1, after] : [limit + 1],
    );
    return toPage(rows, limit, routerView);
  }

  /** The router, locked for the rest of the transaction, and its attached network ids. */
  private async lockRouter(tx: Tx, idOrName: string) {
    const r = await findByIdOrName(
      tx.manager,
      RouterEntity,
      'router',
      idOrName,
      'pessimistic_write',
    );
    const rows = await tx.query<{ network_id: string }>(
      'SELECT network_id FROM router_networks WHERE router_id = $1',
      [r.id],
    );
    return { r, current: rows.map((x) => x.network_id) };
  }

  /** Network refs → ids, locking the networks in a fixed order; 404 for unknown ones. */
  private async resolve(tx: Tx, refs: string[]): Promise<string[]> {
    const ids: string[] = [];
    for (const ref of [...new Set(refs)].sort()) {
      ids.push(
        (await findByIdOrName(tx.manager, NetworkEntity, 'network', ref, 'for_no_key_update')).id,
      );
    }
    return [...new Set(ids)]; // one network may be named by id and by name
  }

  /**
   * Replaces the router's networks. A network attached to any router can meet the others
   * in a host's routing table, so it becomes `routable` and the exclusion constraint then
   * refuses a CIDR overlapping another routable network (409).
   */
  private async setNetworks(
    tx: Tx,
    routerId: string,
    name: string,
    before: string[],
    after: string[],
    deleting = false,
  ) {
    const removed = before.filter((id) => !after.includes(id));
    const added = after.filter((id) => !before.includes(id));
    if (removed.length > 0)
      await tx.query('DELETE FROM router_networks WHERE router_id = $1 AND network_id = ANY($2)', [
        routerId,
        removed,
      ]);
    for (const id of added)
      await tx.query('INSERT INTO router_networks (router_id, network_id) VALUES ($1, $2)', [
        routerId,
        id,
      ]);
    // Detached networks lose `routable` before attached ones gain it, so that swapping
    // two overlapping networks in one call is not refused as an overlap.
    for (const id of [...removed, ...added]) {
      const n = await tx.manager.findOneByOrFail(NetworkEntity, { id });
      const [{ attached }] = await tx.query<{ attached: boolean }>(
        'SELECT EXISTS (SELECT 1 FROM router_networks WHERE network_id = $1) AS attached',
        [id],
      );
      const routable = isBlockBased(n) || attached;
      if (routable !== n.routable)
        await tx.query('UPDATE networks SET routable = $2 WHERE id = $1', [id, routable]);
    }
    if (!deleting)
      tx.record(
        {
          type: 'router.upsert',
          router: { id: routerId, name, networkIds: [...after].sort() },
        },
        { table: 'routers', id: routerId },
      );
  }
}
