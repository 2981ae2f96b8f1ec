import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import {
  encapsulationOverhead,
  isBlockBased,
  type Network,
} from '../../../../libs/model/src/index.js';
import { Conflict, InvalidInput } from '../common/errors.js';
import { findByIdOrName } from '../common/lookup.js';
import { decodeCursor, PageQuery, toPage, type Page } from '../common/pagination.js';
import { InstanceEntity, NetworkEntity, RouterNetworkEntity } from '../database/entities.js';
import { initNetworkRanges } from '../instances/ipam.js';
import { PoolsService, type PoolName } from '../pools/pools.service.js';
import { RevisionLog } from '../revisions/revision-log.js';
import { refuseFloatingOverlap } from '../floating-ips/floating-ip-pools.service.js';
import type { CreateNetworkDto, UpdateNetworkDto } from './network.dto.js';
import { networkParameters } from './network-parameters.js';

export interface NetworkView extends Network {
  /** MTU instances get: the network MTU minus the encapsulation overhead. */
  instanceMtu: number;
  routable: boolean;
  revision: number;
  createdAt: string;
  /** instances on the network */
  instanceCount: number;
  /** distinct hosts of its instances */
  hostCount: number;
}

interface Counts {
  instances: number;
  hosts: number;
}
const NO_INSTANCES: Counts = { instances: 0, hosts: 0 };

/**
 * Instances and distinct hosts per network, for the given networks only: one grouped
 * count over `instances` (served by the index that leads with network_id, the
 * instances_network_ip constraint).
 */
async function instanceCounts(m: EntityManager, ids: string[]): Promise<Map<string, Counts>> {
  const out = new Map<string, Counts>();
  if (ids.length === 0) return out;
  const rows = await m.query<{ id: string; instances: number; hosts: number }[]>(
    `SELECT network_id AS id, count(*)::int AS instances, count(DISTINCT host_id)::int AS hosts
       FROM instances WHERE network_id = ANY($1::uuid[]) GROUP BY network_id`,
    [ids],
  );
  for (const r of rows) out.set(r.id, { instances: r.instances, hosts: r.hosts });
  return out;
}

export function toNetwork(e: NetworkEntity): Network {
  return {
    id: e.id,
    name: e.name,
    model: e.model,
    cidr: e.cidr,
    gateway: e.gateway,
    mtu: e.mtu,
    vlanId: e.vlanId,
    vni: e.vni,
    encapsulation: e.encapsulation,
    routing: e.routing,
    blockPrefixLen: e.blockPrefixLen,
    transport: e.transport,
    natOutgoing: e.natOutgoing,
  };
}

export function networkView(e: NetworkEntity, counts: Counts = NO_INSTANCES): NetworkView {
  return {
    ...toNetwork(e),
    instanceMtu: e.mtu - encapsulationOverhead(e),
    routable: e.routable,
    revision: e.revision,
    createdAt: e.createdAt.toISOString(),
    instanceCount: counts.instances,
    hostCount: counts.hosts,
  };
}

@Injectable()
export class NetworksService {
  constructor(
    private readonly ds: DataSource,
    private readonly revisions: RevisionLog,
    private readonly pools: PoolsService,
  ) {}

  async create(dto: CreateNetworkDto) {
    const p = networkParameters(dto);
    if (Array.isArray(p)) throw new InvalidInput(p);
    const { result, revision } = await this.revisions.mutate(
      async (tx) => {
        const id = (pool: PoolName, explicit: number | undefined) =>
          explicit === undefined
            ? this.pools.allocate(tx, pool)
            : this.pools.claim(tx, pool, explicit);
        const vlanId = p.vlan ? await id('vlan', p.vlan.explicit) : null;
        const vni = p.vni ? await id('vni', p.vni.explicit) : null;
        const saved = await tx.manager.save(
          tx.manager.create(NetworkEntity, {
            name: dto.name,
            model: p.model,
            cidr: p.cidr,
            gateway: p.gateway,
            mtu: p.mtu,
            vlanId,
            vni,
            encapsulation: p.encapsulation,
            routing: p.routing,
            blockPrefixLen: p.blockPrefixLen,
            transport: p.transport,
            natOutgoing: dto.natOutgoing ?? false,
            routable: isBlockBased(p),
            revision: 0,
          }),
        );
        await refuseFloatingOverlap(tx, saved.cidr);
        await initNetworkRanges(tx, saved);
        tx.record(
          { type: 'network.upsert', network: toNetwork(saved) },
          { table: 'networks', id: saved.id },
        );
        return saved.id;
      },
      (m, id) => this.get(id, m),
    );
    return { ...result, revision };
  }

  /** Changes what can change after creation (today `natOutgoing`); the rest is a 400. */
  async update(idOrName: string, dto: UpdateNetworkDto) {
    const { result, revision } = await this.revisions.mutate(
      async (tx) => {
        const n = await findByIdOrName(
          tx.manager,
          NetworkEntity,
          'network',
          idOrName,
          'for_no_key_update',
        );
        if (dto.natOutgoing !== undefined && dto.natOutgoing !== n.natOutgoing) {
          await tx.query('UPDATE networks SET nat_outgoing = $2 WHERE id = $1', [
            n.id,
            dto.natOutgoing,
          ]);
          tx.record(
            {
              type: 'network.upsert',
              network: toNetwork({ ...n, natOutgoing: dto.natOutgoing }),
            },
            { table: 'networks', id: n.id },
          );
        }
        return n.id;
      },
      (m, id) => this.get(id, m),
    );
    return { ...result, revision };
  }

  async get(idOrName: string, m: EntityManager = this.ds.manager): Promise<NetworkView> {
    const n = await findByIdOrName(m, NetworkEntity, 'network', idOrName);
    return networkView(n, (await instanceCounts(m, [n.id])).get(n.id));
  }

  async list(q: PageQuery & { model?: string }): Promise<Page<NetworkView>> {
    const limit = q.limit ?? 100;
    const after = decodeCursor(q.cursor);
    const qb = this.ds.manager
      .createQueryBuilder(NetworkEntity, 'n')
      .orderBy('n.name')
      .limit(limit + 1);
    if (after !== null) qb.andWhere('n.name > :after', { after });
    if (q.model) qb.andWhere('n.model = :model', { model: q.model });
    const rows = await qb.getMany();
    const counts = await instanceCounts(
      this.ds.manager,
      rows.slice(0, limit).map((r) => r.id),
    );
    return toPage(rows, limit, (r) => networkView(r, counts.get(r.id)));
  }

  /** 409 while instances exist or a router is attached; releases its VLAN id or VNI. */
  async delete(idOrName: string) {
    const { result, revision } = await this.revisions.mutate(async (tx) => {
      const n = await findByIdOrName(
        tx.manager,
        NetworkEntity,
        'network',
        idOrName,
        'pessimistic_write',
      );
      const instances = await tx.manager.count(InstanceEntity, { where: { networkId: n.id } });
      if (instances > 0)
        throw new Conflict(`network "${n.name}" still has ${instances} instance(s)`);
      const routers = await tx.manager.count(RouterNetworkEntity, { where: { networkId: n.id } });
      if (routers > 0)
        throw new Conflict(
          `network "${n.name}" is attached to ${routers} router(s); detach it first`,
        );
      await tx.manager.delete(NetworkEntity, { id: n.id });
      if (n.vlanId !== null) await this.pools.release(tx, 'vlan', n.vlanId);
      if (n.vni !== null) await this.pools.release(tx, 'vni', n.vni);
      tx.record({ type: 'network.delete', id: n.id });
      return { id: n.id, name: n.name };
    });
    return { ...result, deleted: true, revision };
  }
}
