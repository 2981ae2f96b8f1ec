import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type { Host } from '../../../../libs/model/src/index.js';
import { Conflict } from '../common/errors.js';
import { findByIdOrName } from '../common/lookup.js';
import { decodeCursor, PageQuery, toPage, type Page } from '../common/pagination.js';
import { HostEntity, InstanceEntity } from '../database/entities.js';
import { hashToken, newToken } from '../auth/tokens.js';
import { RevisionLog, type Tx } from '../revisions/revision-log.js';
import { AgentSessions, notifyAgents, type LiveAgent } from '../agents/agent-sessions.service.js';
import type { CreateHostDto, UpdateHostDto } from './host.dto.js';
import { refuseFloatingAddress } from '../floating-ips/floating-ip-pools.service.js';

export interface HostView {
  id: string;
  name: string;
  underlayIp: string;
  uplink: string;
  asn: number | null;
  labels: Record<string, string>;
  agent: {
    connected: boolean;
    lastSeen: string | null;
    version: string | null;
    errors: { key: string; message: string }[];
    drift: { key: string; message: string }[];
  };
  desiredRevision: number;
  appliedRevision: number;
  inSync: boolean;
  revision: number;
  createdAt: string;
  /** instances placed on the host */
  instanceCount: number;
}

/** Instances per host, for the given hosts only: one grouped count (index instances_host). */
async function instanceCounts(m: EntityManager, ids: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (ids.length === 0) return out;
  const rows = await m.query<{ id: string; n: number }[]>(
    `SELECT host_id AS id, count(*)::int AS n FROM instances
      WHERE host_id = ANY($1::uuid[]) GROUP BY host_id`,
    [ids],
  );
  for (const r of rows) out.set(r.id, r.n);
  return out;
}

export function toHost(e: HostEntity): Host {
  return {
    id: e.id,
    name: e.name,
    underlayIp: e.underlayIp,
    uplink: e.uplink,
    asn: e.asn,
    labels: e.labels,
  };
}

export function hostView(stored: HostEntity, live?: LiveAgent, instanceCount = 0): HostView {
  const e: HostEntity = live
    ? {
        ...stored,
        agentConnected: true,
        agentLastSeen: live.lastSeen,
        agentVersion: live.version,
        appliedRevision: live.applied,
      }
    : stored;
  return {
    ...toHost(e),
    labels: { ...e.labels },
    agent: {
      connected: e.agentConnected,
      lastSeen: e.agentLastSeen?.toISOString() ?? null,
      version: e.agentVersion,
      errors: e.agentErrors,
      drift: e.agentDrift,
    },
    desiredRevision: e.desiredRevision,
    appliedRevision: e.appliedRevision,
    // In sync once an agent has reported and has applied every revision that concerns it.
    inSync: e.agentLastSeen !== null && e.appliedRevision >= e.desiredRevision,
    revision: e.revision,
    createdAt: e.createdAt.toISOString(),
    instanceCount,
  };
}

@Injectable()
export class HostsService {
  constructor(
    private readonly ds: DataSource,
    private readonly revisions: RevisionLog,
    private readonly agents: AgentSessions,
  ) {}

  /** A host's view, with this replica's live agent session laid over the stored row. */
  readonly view = (e: HostEntity, instanceCount = 0): HostView =>
    hostView(e, this.agents.live(e.id), instanceCount);

  /**
   * Registers a host. The agent token is returned here once; only its hash is kept. The
   * answer is built from what was written, not read after the commit: a read that failed
   * (the database gone right after the COMMIT) would lose a token that is shown only once.
   */
  async create(dto: CreateHostDto) {
    const agentToken = newToken(`lah`);
    const { result: saved, revision } = await this.revisions.mutate((tx) =>
      this.insert(tx, dto, agentToken),
    );
    return { ...this.view({ ...saved, revision }), agentToken, revision };
  }

  /** Writes a new host with the hash of `agentToken`, inside `tx` (a create or a join). */
  async insert(tx: Tx, dto: CreateHostDto, agentToken: string): Promise<HostEntity> {
    await refuseFloatingAddress(tx, dto.underlayIp);
    const saved = await tx.manager.save(
      tx.manager.create(HostEntity, {
        name: dto.name,
        underlayIp: dto.underlayIp,
        uplink: dto.uplink ?? 'eth0',
        asn: dto.asn ?? null,
        labels: dto.labels ?? {},
        agentTokenHash: hashToken(agentToken),
        agentConnected: false,
        agentLastSeen: null,
        agentVersion: null,
        agentErrors: [],
        agentDrift: [],
        appliedRevision: 0,
        desiredRevision: 0,
        revision: 0,
      }),
    );
    tx.record({ type: 'host.upsert', host: toHost(saved) }, { table: 'hosts', id: saved.id });
    return saved;
  }

  /**
   * A host joining again under its name (`join-tokens`): it takes the underlay address,
   * uplink and labels it reports and a new agent token, which revokes the old one (an agent
   * still connected with it is disconnected, on any replica, once the caller has committed
   * and called `agents.verify`).
   */
  async rejoin(
    tx: Tx,
    host: HostEntity,
    dto: CreateHostDto,
    agentToken: string,
  ): Promise<HostEntity & { instanceCount: number }> {
    return this.replaceToken(tx, await this.change(tx, host, dto), agentToken);
  }

  /** Changes a host's underlay address, uplink, ASN or labels; every host it affects follows. */
  async update(idOrName: string, dto: UpdateHostDto) {
    const { result, revision } = await this.revisions.mutate(
      async (tx) => {
        const host = await this.lockHost(tx, idOrName);
        await this.change(tx, host, dto);
        return host.id;
      },
      (m, id) => this.get(id, m),
    );
    return { ...result, revision };
  }

  /**
   * Writes what `dto` changes of the (locked) host and records it, when anything changes;
   * answers the host as it now is.
   */
  private async change(tx: Tx, host: HostEntity, dto: UpdateHostDto): Promise<HostEntity> {
    const next: HostEntity = {
      ...host,
      underlayIp: dto.underlayIp ?? host.underlayIp,
      uplink: dto.uplink ?? host.uplink,
      asn: dto.asn === undefined ? host.asn : dto.asn,
      labels: dto.labels ?? host.labels,
    };
    const after = toHost(next);
    if (JSON.stringify(toHost(host)) === JSON.stringify(after)) return host;
    if (after.underlayIp !== host.underlayIp) await refuseFloatingAddress(tx, after.underlayIp);
    await tx.manager.update(
      HostEntity,
      { id: host.id },
      {
        underlayIp: after.underlayIp,
        uplink: after.uplink,
        asn: after.asn,
        labels: { ...after.labels },
      },
    );
    tx.record({ type: 'host.upsert', host: after }, { table: 'hosts', id: host.id });
    return next;
  }

  /**
   * Gives the (locked) host the hash of a new agent token, which revokes the old one: its
   * agent is told to go (`notifyAgents`, on any replica, once the caller has committed and
   * called `agents.verify`).
   */
  private async replaceToken(
    tx: Tx,
    host: HostEntity,
    agentToken: string,
  ): Promise<HostEntity & { instanceCount: number }> {
    const agentTokenHash = hashToken(agentToken);
    await tx.manager.update(HostEntity, { id: host.id }, { agentTokenHash });
    await notifyAgents(tx, host.id);
    const instanceCount = (await instanceCounts(tx.manager, [host.id])).get(host.id) ?? 0;
    return { ...host, agentTokenHash, instanceCount };
  }

  /** The host, locked for the rest of the transaction (404 when unknown). */
  private lockHost(tx: Tx, idOrName: string): Promise<HostEntity> {
    return findByIdOrName(tx.manager, HostEntity, 'host', idOrName, 'pessimistic_write');
  }

  async get(idOrName: string, m: EntityManager = this.ds.manager): Promise<HostView> {
    const h = await findByIdOrName(m, HostEntity, 'host', idOrName);
    return this.view(h, (await instanceCounts(m, [h.id])).get(h.id));
  }

  async list(q: PageQuery): Promise<Page<HostView>> {
    const limit = q.limit ?? 100;
    const after = decodeCursor(q.cursor);
    const qb = this.ds.manager
      .createQueryBuilder(HostEntity, 'h')
      .orderBy('h.name')
      .limit(limit + 1);
    if (after !== null) qb.where('h.name > :after', { after });
    const rows = await qb.getMany();
    const counts = await instanceCounts(
      this.ds.manager,
      rows.slice(0, limit).map((r) => r.id),
    );
    return toPage(rows, limit, (r) => this.view(r, counts.get(r.id)));
  }

  /**
   * Issues a new agent token (shown once) and revokes the old one: an agent connected
   * with it is disconnected and must come back with the new token.
   */
  async rotateToken(idOrName: string) {
    const agentToken = newToken('lah');
    // Answered from the locked row, like a create: the new token is shown only this once.
    const { result: host, revision } = await this.revisions.mutate(async (tx) =>
      this.replaceToken(tx, await this.lockHost(tx, idOrName), agentToken),
    );
    await this.agents.verify([host.id]);
    return { ...this.view(host, host.instanceCount), agentToken, revision };
  }

  /** 409 while instances still live on the host. */
  async delete(idOrName: string) {
    const { result, revision } = await this.revisions.mutate(async (tx) => {
      const host = await this.lockHost(tx, idOrName);
      const instances = await tx.manager.count(InstanceEntity, { where: { hostId: host.id } });
      if (instances > 0)
        throw new Conflict(
          `host "${host.name}" still has ${instances} instance(s); delete or move them first`,
        );
      await tx.manager.delete(HostEntity, { id: host.id });
      await notifyAgents(tx, host.id);
      tx.record({ type: 'host.delete', id: host.id });
      return { id: host.id, name: host.name };
    });
    await this.agents.verify([result.id]);
    return { ...result, deleted: true, revision };
  }
}
