import { Injectable, NotFoundException } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import {
  normalizeMac,
  randomMac,
  isBlockBased,
  type Instance,
} from '../../../../libs/model/src/index.js';
import { Conflict, InvalidInput } from '../common/errors.js';
import { findByIdOrName, isUuid } from '../common/lookup.js';
import { decodeCursor, toPage, type Page } from '../common/pagination.js';
import { HostEntity, InstanceEntity, NetworkEntity } from '../database/entities.js';
import { RevisionLog, type Tx } from '../revisions/revision-log.js';
import { AgentSessions } from '../agents/agent-sessions.service.js';
import type { CreateInstanceDto, InstanceListQuery, UpdateInstanceDto } from './instance.dto.js';
import { allocateIp, freeAddressesMany, insertAtLowestFree, releaseAddress } from './ipam.js';

export interface InstanceView extends Instance {
  network: string;
  host: string;
  /** `active` once the host's agent has applied the instance's revision, else `pending`. */
  state: 'pending' | 'active';
  revision: number;
  createdAt: string;
}

interface InstanceRow {
  id: string;
  name: string;
  network_id: string;
  host_id: string;
  ip: string;
  mac: string;
  labels: Record<string, string>;
  revision: string;
  created_at: Date;
  network: string;
  host: string;
  applied_revision: string;
  desired_revision: string;
}

const SELECT_VIEW = `
  SELECT i.id, i.name, i.network_id, i.host_id, host(i.ip) AS ip, i.mac::text AS mac, i.labels, i.revision, i.created_at,
         n.name AS network, h.name AS host, h.applied_revision, h.desired_revision
    FROM instances i JOIN networks n ON n.id = i.network_id JOIN hosts h ON h.id = i.host_id`;

/** What a create (or a move) wrote, enough to answer without reading it back. */
interface Created {
  readonly instance: Instance;
  readonly network: string;
  readonly host: string;
  readonly createdAt: Date;
  /** The host's applied revision as stored (the live value is preferred). */
  readonly hostApplied: number;
  /**
   * Set when the change placed nothing (labels only): the host's desired revision, read
   * under the revision lock. Otherwise the change's revision changed the host.
   */
  readonly hostDesired?: number;
}

/**
 * The revision the instance's host must have applied for the instance to be `active`: the
 * instance's revision, unless its host's desired state did not change since (a change of
 * labels alone places nothing): every change that places an instance bumps its host's
 * desired revision, so the smaller of the two is never before the instance was placed.
 */
function placedAt(instanceRevision: number, hostDesired: number): number {
  return Math.min(instanceRevision, hostDesired);
}

/** Label sets are equal (key order aside). */
function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}

function instanceView(r: InstanceRow, liveApplied?: number): InstanceView {
  return {
    id: r.id,
    name: r.name,
    networkId: r.network_id,
    hostId: r.host_id,
    network: r.network,
    host: r.host,
    ip: r.ip,
    mac: r.mac,
    labels: r.labels,
    state:
      (liveApplied ?? Number(r.applied_revision)) >=
      placedAt(Number(r.revision), Number(r.desired_revision))
        ? 'active'
        : 'pending',
    revision: Number(r.revision),
    createdAt: r.created_at.toISOString(),
  };
}

/** A network row as IPAM and the services use it (the entity's fields). */
const NETWORK_COLUMNS = `id, name, model, cidr::text AS cidr, host(gateway) AS gateway, mtu,
  vlan_id AS "vlanId", vni, encapsulation, routing, block_prefix_len AS "blockPrefixLen",
  transport, nat_outgoing AS "natOutgoing", routable, revision::float8 AS revision,
  created_at AS "createdAt"`;

/** What an instance needs of its host. */
type HostRef = Pick<HostEntity, 'id' | 'name' | 'appliedRevision' | 'desiredRevision'>;
const HOST_COLUMNS = `id, name, applied_revision::float8 AS "appliedRevision",
  desired_revision::float8 AS "desiredRevision"`;

/**
 * The network, locked for the rest of the batch (FOR NO KEY UPDATE: allocation within it is
 * serialised) and looked up once per batch, with a prepared statement.
 */
function lockNetwork(tx: Tx, ref: string): Promise<NetworkEntity> {
  return tx.lookup(`network:${ref}`, async () => {
    const [row] = await tx.query<NetworkEntity>(
      `SELECT ${NETWORK_COLUMNS} FROM networks WHERE ${isUuid(ref) ? 'id' : 'name'} = $1 FOR NO KEY UPDATE`,
      [ref],
    );
    if (!row) throw new NotFoundException(`network "${ref}" not found`);
    return row;
  });
}

function findHost(tx: Tx, ref: string): Promise<HostRef> {
  return tx.lookup(`host:${ref}`, async () => {
    const [row] = await tx.query<HostRef>(
      `SELECT ${HOST_COLUMNS} FROM hosts WHERE ${isUuid(ref) ? 'id' : 'name'} = $1`,
      [ref],
    );
    if (!row) throw new NotFoundException(`host "${ref}" not found`);
    return row;
  });
}

/**
 * The network (locked) and the host of a create, in one statement when the batch has
 * looked up neither yet. A missing network is reported before a missing host.
 */
async function lockNetworkAndHost(
  tx: Tx,
  netRef: string,
  hostRef: string,
): Promise<[NetworkEntity, HostRef]> {
  const nKey = `network:${netRef}`;
  const hKey = `host:${hostRef}`;
  if (!tx.looked(nKey) && !tx.looked(hKey)) {
    const both = tx.lookup(`network+host:${netRef}\n${hostRef}`, async () => {
      const [row] = await tx.query<{ network: NetworkEntity | null; host: HostRef | null }>(
        `SELECT (SELECT row_to_json(n) FROM (SELECT ${NETWORK_COLUMNS} FROM networks
                  WHERE ${isUuid(netRef) ? 'id' : 'name'} = $1 FOR NO KEY UPDATE) n) AS network,
                (SELECT row_to_json(h) FROM (SELECT ${HOST_COLUMNS}
                  FROM hosts WHERE ${isUuid(hostRef) ? 'id' : 'name'} = $2) h) AS host`,
        [netRef, hostRef],
      );
      return row;
    });
    const network = tx.lookup(nKey, async () => {
      const n = (await both).network;
      if (!n) throw new NotFoundException(`network "${netRef}" not found`);
      return n;
    });
    const host = tx.lookup(hKey, async () => {
      const h = (await both).host;
      if (!h) throw new NotFoundException(`host "${hostRef}" not found`);
      return h;
    });
    // The network's error first, as a create reports it; the host's is then not unobserved.
    const [n, h] = await Promise.allSettled([network, host]);
    if (n.status === 'rejected') throw n.reason;
    if (h.status === 'rejected') throw h.reason;
    return [n.value, h.value];
  }
  const network = await lockNetwork(tx, netRef);
  return [network, await findHost(tx, hostRef)];
}

/** Rows named by id or name, in one query; 404 naming the first one missing. */
async function findMany<T extends { id: string; name: string }>(
  refs: readonly string[],
  what: string,
  load: (ids: string[], names: string[]) => Promise<T[]>,
): Promise<Map<string, T>> {
  const unique = [...new Set(refs)];
  const rows = await load(
    unique.filter(isUuid),
    unique.filter((r) => !isUuid(r)),
  );
  const out = new Map<string, T>();
  for (const r of rows) {
    out.set(r.id, r);
    out.set(r.name, r);
  }
  const missing = unique.find((r) => !out.has(r));
  if (missing !== undefined) throw new NotFoundException(`${what} "${missing}" not found`);
  return out;
}

/** The networks of a bulk, locked in id order (concurrent bulks cannot deadlock), one query. */
function lockNetworks(tx: Tx, refs: readonly string[]): Promise<Map<string, NetworkEntity>> {
  return findMany(refs, 'network', (ids, names) =>
    tx.query<NetworkEntity>(
      `SELECT ${NETWORK_COLUMNS} FROM networks WHERE id = ANY($1::uuid[]) OR name = ANY($2::text[])
        ORDER BY id FOR NO KEY UPDATE`,
      [ids, names],
    ),
  );
}

function findHosts(tx: Tx, refs: readonly string[]): Promise<Map<string, HostRef>> {
  return findMany(refs, 'host', (ids, names) =>
    tx.query<HostRef>(
      `SELECT ${HOST_COLUMNS} FROM hosts WHERE id = ANY($1::uuid[]) OR name = ANY($2::text[])`,
      [ids, names],
    ),
  );
}

@Injectable()
export class InstancesService {
  constructor(
    private readonly ds: DataSource,
    private readonly revisions: RevisionLog,
    private readonly agents: AgentSessions,
  ) {}

  private view = (r: InstanceRow): InstanceView =>
    instanceView(r, this.agents.live(r.host_id)?.applied);

  async create(dto: CreateInstanceDto) {
    const { result, revision } = await this.revisions.mutate(
      async (tx) => {
        const [net, host] = await lockNetworkAndHost(tx, dto.network, dto.host);
        if (dto.ip === undefined) {
          // The fast path: address and row in one all-or-nothing statement, no savepoint.
          const mac = dto.mac !== undefined ? normalizeMac(dto.mac)! : randomMac();
          const labels = dto.labels ?? {};
          const got = await insertAtLowestFree(tx, net, {
            name: dto.name,
            hostId: host.id,
            mac,
            labels,
            revision: tx.revision,
          });
          if (got.ok) {
            const instance: Instance = {
              id: got.id,
              name: dto.name,
              networkId: net.id,
              hostId: host.id,
              ip: got.ip,
              mac,
              labels,
            };
            tx.record({ type: 'instance.upsert', instance });
            return {
              instance,
              network: net.name,
              host: host.name,
              createdAt: got.createdAt,
              hostApplied: host.appliedRevision,
            };
          }
          // No room (a new block to claim, or exhausted) or a clash (name, MAC): nothing
          // was written; the general path below claims, or answers the precise error.
        }
        await tx.protect();
        return this.createOne(tx, dto, net, host, '');
      },
      undefined,
      { lazySavepoint: true },
    );
    return this.created(result, revision);
  }

  /**
   * The answer to a create, from what the work wrote (no read after the commit): the row
   * carries the batch's revision, and is active once its host's agent applied it.
   */
  private created(c: Created, revision: number): InstanceView & { revision: number } {
    const applied = this.agents.live(c.instance.hostId)?.applied ?? c.hostApplied;
    const needed = c.hostDesired === undefined ? revision : placedAt(revision, c.hostDesired);
    return {
      ...c.instance,
      network: c.network,
      host: c.host,
      state: applied >= needed ? 'active' : 'pending',
      revision,
      createdAt: c.createdAt.toISOString(),
    };
  }

  /** Up to 1,000 instances in one transaction and one revision: all or none. */
  async createBulk(items: CreateInstanceDto[]) {
    const seen = new Map<string, number>();
    const dupes = items.flatMap((it, i) => {
      const first = seen.get(it.name);
      seen.set(it.name, first ?? i);
      return first === undefined
        ? []
        : [
            {
              field: `instances[${i}].name`,
              errors: [`name "${it.name}" repeats instances[${first}]`],
            },
          ];
    });
    if (dupes.length > 0) throw new InvalidInput(dupes);
    const { result, revision } = await this.revisions.mutate(async (tx) => {
      const nets = await lockNetworks(
        tx,
        items.map((i) => i.network),
      );
      return this.insertBulk(tx, items, nets);
    });
    const views = result.map((c) => this.created(c, revision));
    views.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { items: views, revision };
  }

  /**
   * The bulk path: addresses are drawn in one query per network (block-based networks: per
   * network and host, claiming the blocks needed) and the rows go in with multi-row
   * INSERTs; explicit addresses take the single-create validation.
   */
  private async insertBulk(
    tx: Tx,
    items: CreateInstanceDto[],
    nets: Map<string, NetworkEntity>,
  ): Promise<Created[]> {
    const hosts = await findHosts(
      tx,
      items.map((i) => i.host),
    );
    const hostOf = (ref: string) => Promise.resolve(hosts.get(ref)!);
    const pooled = (it: CreateInstanceDto) => it.ip === undefined;
    const poolOf = (it: CreateInstanceDto) =>
      isBlockBased(nets.get(it.network)!) ? `${it.network}\n${it.host}` : it.network;
    const push = <V>(m: Map<string, V[]>, key: string, v: V) => {
      const list = m.get(key);
      if (list) list.push(v);
      else m.set(key, [v]);
    };
    const wanted = new Map<string, CreateInstanceDto[]>();
    const explicit = new Map<string, string[]>();
    for (const it of items) {
      if (it.ip === undefined) push(wanted, poolOf(it), it);
      else push(explicit, it.network, it.ip);
    }
    // Every pool's addresses in at most two statements, whatever the number of pools.
    const keys = [...wanted.keys()];
    const drawn = await freeAddressesMany(
      tx,
      keys.map((key) => {
        const mine = wanted.get(key)!;
        const net = nets.get(mine[0].network)!;
        return {
          net,
          count: mine.length,
          exclude: explicit.get(mine[0].network) ?? [],
          hostId: isBlockBased(net) ? hosts.get(mine[0].host)!.id : undefined,
        };
      }),
    );
    const pools = new Map(keys.map((key, k) => [key, drawn[k]]));
    interface Row {
      at: number;
      name: string;
      net: NetworkEntity;
      host: HostRef;
      ip: string;
      mac: string;
      explicitMac: boolean;
      labels: Record<string, string>;
    }
    const out = new Array<Created>(items.length);
    const rows: Row[] = [];
    for (const [i, it] of items.entries()) {
      const net = nets.get(it.network)!;
      const host = await hostOf(it.host);
      let ip: string;
      if (pooled(it)) {
        const next = pools.get(poolOf(it))!.shift();
        if (!next) {
          throw new Conflict(
            `network "${net.name}" (${net.cidr}) is exhausted: no free address for instances[${i}]`,
          );
        }
        ip = next;
      } else ip = (await allocateIp(tx, net, host.id, it.ip, `instances[${i}].ip`)).ip;
      const explicitMac = it.mac !== undefined;
      rows.push({
        at: i,
        name: it.name,
        net,
        host,
        ip,
        mac: explicitMac ? normalizeMac(it.mac!)! : randomMac(),
        explicitMac,
        labels: it.labels ?? {},
      });
    }
    const inserted = new Map<string, { id: string; created_at: Date }>();
    for (let off = 0; off < rows.length; off += 500) {
      const chunk = rows.slice(off, off + 500);
      const got = await tx.query<{ id: string; name: string; created_at: Date }>(
        `INSERT INTO instances (name, network_id, host_id, ip, mac, labels, revision)
         SELECT name, network_id, host_id, ip, mac, labels, $7::bigint
           FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::inet[], $5::macaddr[], $6::jsonb[])
                AS r(name, network_id, host_id, ip, mac, labels)
         ON CONFLICT (mac) DO NOTHING RETURNING id, name, created_at`,
        [
          chunk.map((r) => r.name),
          chunk.map((r) => r.net.id),
          chunk.map((r) => r.host.id),
          chunk.map((r) => r.ip),
          chunk.map((r) => r.mac),
          chunk.map((r) => JSON.stringify(r.labels)),
          tx.revision,
        ],
      );
      for (const g of got) inserted.set(g.name, g);
    }
    for (const r of rows) {
      if (!inserted.has(r.name)) {
        // A MAC clash: a requested MAC is a conflict, a generated one is drawn again.
        if (r.explicitMac) throw new Conflict(`MAC address ${r.mac} is already in use`);
        for (;;) {
          r.mac = randomMac();
          const [g] = await tx.query<{ id: string; created_at: Date }>(
            `INSERT INTO instances (name, network_id, host_id, ip, mac, labels, revision)
             VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
             ON CONFLICT (mac) DO NOTHING RETURNING id, created_at`,
            [r.name, r.net.id, r.host.id, r.ip, r.mac, JSON.stringify(r.labels), tx.revision],
          );
          if (!g) continue;
          inserted.set(r.name, g);
          break;
        }
      }
      const { id, created_at } = inserted.get(r.name)!;
      const instance: Instance = {
        id,
        name: r.name,
        networkId: r.net.id,
        hostId: r.host.id,
        ip: r.ip,
        mac: r.mac,
        labels: r.labels,
      };
      tx.record({ type: 'instance.upsert', instance }); // inserted with the batch's revision
      out[r.at] = {
        instance,
        network: r.net.name,
        host: r.host.name,
        createdAt: created_at,
        hostApplied: r.host.appliedRevision,
      };
    }
    return out;
  }

  private async createOne(
    tx: Tx,
    dto: CreateInstanceDto,
    net: NetworkEntity,
    host: HostRef,
    at: string,
  ): Promise<Created> {
    const { ip } = await allocateIp(tx, net, host.id, dto.ip, `${at}ip`);
    const labels = dto.labels ?? {};
    // MAC uniqueness is the database's: a clash with a requested MAC is a 409, with a
    // generated one (46 random bits) just another draw.
    for (;;) {
      const mac = dto.mac !== undefined ? normalizeMac(dto.mac)! : randomMac();
      const [row] = await tx.query<{ id: string; created_at: Date }>(
        `INSERT INTO instances (name, network_id, host_id, ip, mac, labels, revision)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
         ON CONFLICT (mac) DO NOTHING RETURNING id, created_at`,
        [dto.name, net.id, host.id, ip, mac, JSON.stringify(labels), tx.revision],
      );
      if (!row) {
        if (dto.mac !== undefined) throw new Conflict(`MAC address ${mac} is already in use`);
        continue;
      }
      const instance: Instance = {
        id: row.id,
        name: dto.name,
        networkId: net.id,
        hostId: host.id,
        ip,
        mac,
        labels,
      };
      tx.record({ type: 'instance.upsert', instance }); // inserted with the batch's revision
      return {
        instance,
        network: net.name,
        host: host.name,
        createdAt: row.created_at,
        hostApplied: host.appliedRevision,
      };
    }
  }

  async get(idOrName: string, m: EntityManager = this.ds.manager): Promise<InstanceView> {
    const [row] = await m.query<InstanceRow[]>(
      `${SELECT_VIEW} WHERE i.${isUuid(idOrName) ? 'id' : 'name'} = $1`,
      [idOrName],
    );
    if (!row) throw new NotFoundException(`instance "${idOrName}" not found`);
    return this.view(row);
  }

  async list(q: InstanceListQuery): Promise<Page<InstanceView>> {
    const limit = q.limit ?? 100;
    const after = decodeCursor(q.cursor);
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.network) {
      const n = await findByIdOrName(this.ds.manager, NetworkEntity, 'network', q.network);
      params.push(n.id);
      where.push(`i.network_id = $${params.length}`);
    }
    if (q.host) {
      const h = await findByIdOrName(this.ds.manager, HostEntity, 'host', q.host);
      params.push(h.id);
      where.push(`i.host_id = $${params.length}`);
    }
    if (q.label !== undefined) {
      // One equality selector; `@>` is served by the GIN index instances_labels.
      const eq = q.label.indexOf('=');
      params.push(JSON.stringify({ [q.label.slice(0, eq)]: q.label.slice(eq + 1) }));
      where.push(`i.labels @> $${params.length}::jsonb`);
    }
    if (after !== null) {
      params.push(after);
      where.push(`i.name > $${params.length}`);
    }
    params.push(limit + 1);
    const rows = await this.ds.query<InstanceRow[]>(
      `${SELECT_VIEW} ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY i.name LIMIT $${params.length}`,
      params,
    );
    return toPage(rows, limit, this.view);
  }

  /**
   * Moves an instance to another host keeping its IP and MAC (mobility), and/or replaces
   * its labels; both in one revision. A move is not possible for block-based models: the
   * address belongs to the old host's block. Labels alone change no host's resources.
   */
  async update(idOrName: string, dto: UpdateInstanceDto) {
    if (dto.host === undefined && dto.labels === undefined) {
      const error = 'give host (a move) and/or labels (the whole set)';
      throw new InvalidInput([
        { field: 'host', errors: [error] },
        { field: 'labels', errors: [error] },
      ]);
    }
    // Answered from what the work read and wrote, like a create: a read after the commit
    // could fail (the database gone) and turn a committed change into an error.
    const { result, revision } = await this.revisions.mutate(async (tx) => {
      const inst = await findByIdOrName(tx.manager, InstanceEntity, 'instance', idOrName);
      const net = await lockNetwork(tx, inst.networkId);
      const target = dto.host !== undefined ? await findHost(tx, dto.host) : undefined;
      if (target && isBlockBased(net)) {
        throw new Conflict(
          `instances of network "${net.name}" (${net.model}${net.encapsulation ? '/' + net.encapsulation : ''}) take their address from the host's block and cannot move; delete and recreate the instance instead`,
        );
      }
      const current = await tx.manager.findOneOrFail(InstanceEntity, {
        where: { id: inst.id },
        lock: { mode: 'pessimistic_write' },
      });
      const host = target ?? (await findHost(tx, current.hostId));
      const moves = host.id !== current.hostId;
      const labels = dto.labels ?? current.labels;
      const relabels = !sameLabels(labels, current.labels);
      const instance: Instance = {
        id: current.id,
        name: current.name,
        networkId: current.networkId,
        hostId: host.id,
        ip: current.ip,
        mac: current.mac,
        labels,
      };
      const answer = (hostDesired?: number): Created => ({
        instance,
        network: net.name,
        host: host.name,
        createdAt: current.createdAt,
        hostApplied: host.appliedRevision,
        hostDesired,
      });
      if (!moves && !relabels) {
        return { changed: answer(host.desiredRevision), rowRevision: current.revision };
      }
      await tx.manager.update(
        InstanceEntity,
        { id: current.id },
        { hostId: host.id, labels: { ...labels } },
      );
      // A relabel carries the whole instance (its new host too, when it also moves); a
      // move alone stays a move. Stamped with the batch's revision at commit.
      tx.record(
        relabels
          ? { type: 'instance.upsert', instance }
          : { type: 'instance.move', id: current.id, hostId: host.id },
        { table: 'instances', id: current.id },
      );
      return {
        changed: answer(moves ? undefined : host.desiredRevision),
        rowRevision: tx.revision,
      };
    });
    return { ...this.created(result.changed, result.rowRevision), revision };
  }

  async delete(idOrName: string) {
    const { result, revision } = await this.revisions.mutate(async (tx) => {
      const inst = await findByIdOrName(tx.manager, InstanceEntity, 'instance', idOrName);
      const net = await lockNetwork(tx, inst.networkId);
      const deleted = await tx.query<{ id: string }>(
        'WITH d AS (DELETE FROM instances WHERE id = $1 RETURNING id) SELECT id FROM d',
        [inst.id],
      );
      if (deleted.length === 0)
        throw new Conflict(`instance "${inst.name}" was deleted concurrently`);
      tx.record({ type: 'instance.delete', id: inst.id });
      await releaseAddress(tx, net, inst.hostId, inst.ip);
      return { id: inst.id, name: inst.name };
    });
    return { ...result, deleted: true, revision };
  }
}
