import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { previewPolicy } from '../../../../libs/engine/src/index.js';
import {
  isCidrPeer,
  type Policy,
  type PolicyRule,
  type Topology,
} from '../../../../libs/model/src/index.js';
import { Conflict, InvalidInput } from '../common/errors.js';
import { findByIdOrName, isUuid } from '../common/lookup.js';
import { decodeCursor, PageQuery, toPage, type Page } from '../common/pagination.js';
import { NetworkEntity, PolicyEntity } from '../database/entities.js';
import { DesiredStateService } from '../desired-state/desired-state.service.js';
import { RevisionLog } from '../revisions/revision-log.js';
import { parsePolicyBody, type RawPolicy, type RawRule } from './policy-body.js';

/** The stored spec (jsonb): the domain policy without id and name. */
type Spec = Pick<Policy, 'selector' | 'networkIds' | 'ingress' | 'egress'>;

interface PolicyRow {
  id: string;
  name: string;
  spec: Spec;
  revision: string;
  created_at: Date;
  updated_at: Date;
}

interface Ref {
  id: string;
  name: string;
}

const SELECT = 'SELECT id, name, spec, revision, created_at, updated_at FROM policies';

@Injectable()
export class PoliciesService {
  constructor(
    private readonly ds: DataSource,
    private readonly revisions: RevisionLog,
    private readonly desired: DesiredStateService,
  ) {}

  async create(body: Record<string, unknown>, dryRun: boolean) {
    const name = body.name as string;
    const raw = parsePolicyBody(body, false);
    if (dryRun) {
      const taken = await this.ds.query<unknown[]>('SELECT 1 FROM policies WHERE name = $1', [
        name,
      ]);
      if (taken.length > 0) throw new Conflict('a policy with this name already exists');
      const policy = await this.build(this.ds.manager, randomUUID(), name, raw, null);
      return this.preview(null, policy);
    }
    const { result, revision } = await this.revisions.mutate(
      async (tx) => {
        const id = randomUUID();
        const policy = await this.build(tx.manager, id, name, raw, null);
        await tx.query('INSERT INTO policies (id, name, spec, revision) VALUES ($1, $2, $3, 0)', [
          id,
          name,
          JSON.stringify(specOf(policy)),
        ]);
        tx.record({ type: 'policy.upsert', policy }, { table: 'policies', id });
        return id;
      },
      (m, id) => this.get(id, m),
    );
    return { ...result, revision };
  }

  async update(idOrName: string, body: Record<string, unknown>, dryRun: boolean) {
    const raw = parsePolicyBody(body, true);
    if (dryRun) {
      const before = await this.load(this.ds.manager, idOrName);
      const after = await this.build(this.ds.manager, before.id, before.name, raw, before);
      return this.preview(before, after);
    }
    const { result, revision } = await this.revisions.mutate(
      async (tx) => {
        const before = await this.load(tx.manager, idOrName, true);
        const after = await this.build(tx.manager, before.id, before.name, raw, before);
        await tx.query('UPDATE policies SET spec = $2, updated_at = now() WHERE id = $1', [
          before.id,
          JSON.stringify(specOf(after)),
        ]);
        tx.record({ type: 'policy.upsert', policy: after }, { table: 'policies', id: before.id });
        return before.id;
      },
      (m, id) => this.get(id, m),
    );
    return { ...result, revision };
  }

  async delete(idOrName: string, dryRun: boolean) {
    if (dryRun) return this.preview(await this.load(this.ds.manager, idOrName), null);
    const { result, revision } = await this.revisions.mutate(async (tx) => {
      const p = await this.load(tx.manager, idOrName, true);
      await tx.query('DELETE FROM policies WHERE id = $1', [p.id]);
      tx.record({ type: 'policy.delete', id: p.id });
      return { id: p.id, name: p.name };
    });
    return { ...result, deleted: true, revision };
  }

  async get(idOrName: string, m: EntityManager = this.ds.manager) {
    const rows = await m.query<PolicyRow[]>(
      `${SELECT} WHERE ${isUuid(idOrName) ? 'id' : 'name'} = $1`,
      [idOrName],
    );
    if (rows.length === 0) await findByIdOrName(m, PolicyEntity, 'policy', idOrName); // 404
    const names = await this.networkNames(m, rows);
    return view(rows[0], names);
  }

  async list(q: PageQuery): Promise<Page<ReturnType<typeof view>>> {
    const limit = q.limit ?? 100;
    const after = decodeCursor(q.cursor);
    const rows = await this.ds.query<PolicyRow[]>(
      `${SELECT} ${after !== null ? 'WHERE name > $2' : ''} ORDER BY name LIMIT $1`,
      after !== null ? [limit + 1, after] : [limit + 1],
    );
    const names = await this.networkNames(this.ds.manager, rows);
    return toPage(rows, limit, (r) => view(r, names));
  }

  // ---- helpers ---------------------------------------------------------------------------

  /** The stored policy in its domain form (locked for the transaction when `lock`). */
  private async load(m: EntityManager, idOrName: string, lock = false): Promise<Policy> {
    const e = await findByIdOrName(
      m,
      PolicyEntity,
      'policy',
      idOrName,
      lock ? 'pessimistic_write' : undefined,
    );
    return { id: e.id, name: e.name, ...(e.spec as Spec) };
  }

  /** The policy a body makes (over `base` for a PATCH), network references resolved. */
  private async build(
    m: EntityManager,
    id: string,
    name: string,
    raw: RawPolicy,
    base: Policy | null,
  ): Promise<Policy> {
    const cache = new Map<string, string>();
    const resolve = async (refs: string[]) => {
      const ids: string[] = [];
      for (const ref of refs) {
        let nid = cache.get(ref);
        if (nid === undefined) {
          nid = (await findByIdOrName(m, NetworkEntity, 'network', ref)).id;
          cache.set(ref, nid);
        }
        ids.push(nid);
      }
      return [...new Set(ids)].sort();
    };
    const rules = async (rs: RawRule[] | null): Promise<PolicyRule[] | null> => {
      if (rs === null) return null;
      const out: PolicyRule[] = [];
      for (const r of rs) {
        const peers: PolicyRule['peers'][number][] = [];
        for (const p of r.peers) {
          if ('cidr' in p) peers.push(p);
          else peers.push({ selector: p.selector, networkIds: await resolve(p.networks) });
        }
        out.push({ peers, ports: r.ports });
      }
      return out;
    };
    const policy: Policy = {
      id,
      name,
      selector: raw.selector ?? base!.selector,
      networkIds:
        raw.networks !== undefined ? await resolve(raw.networks) : (base?.networkIds ?? []),
      ingress: raw.ingress !== undefined ? await rules(raw.ingress) : (base?.ingress ?? null),
      egress: raw.egress !== undefined ? await rules(raw.egress) : (base?.egress ?? null),
    };
    if (policy.ingress === null && policy.egress === null)
      throw InvalidInput.field('ingress', 'a policy needs ingress and/or egress rules');
    return policy;
  }

  private async networkNames(m: EntityManager, rows: PolicyRow[]): Promise<Map<string, string>> {
    const ids = new Set<string>();
    for (const r of rows) for (const id of networkIdsOf(r.spec)) ids.add(id);
    if (ids.size === 0) return new Map();
    const found = await m.query<Ref[]>('SELECT id, name FROM networks WHERE id = ANY($1)', [
      [...ids],
    ]);
    return new Map(found.map((n) => [n.id, n.name]));
  }

  /** A dry run: what the change would do, from the engine's current topology. */
  private async preview(before: Policy | null, after: Policy | null) {
    return this.desired.read(
      (v) => {
        const t = v.topology();
        const p = previewPolicy(t, before, after);
        const inst = (id: string): Ref => ({ id, name: t.instances.get(id)?.name ?? id });
        const host = (id: string): Ref => ({ id, name: t.hosts.get(id)?.name ?? id });
        const flows = (fs: typeof p.denied) =>
          fs.map((f) => ({ from: inst(f.from), to: inst(f.to), ports: f.ports }));
        const shown = (after ?? before)!;
        return {
          dryRun: true as const,
          policy: view(
            {
              id: shown.id,
              name: shown.name,
              spec: specOf(shown),
              revision: String(v.revision),
              created_at: new Date(),
              updated_at: new Date(),
            },
            namesFrom(t),
          ),
          selected: { added: p.selected.added.map(inst), removed: p.selected.removed.map(inst) },
          denied: flows(p.denied),
          allowed: flows(p.allowed),
          hosts: p.hosts.map(host),
          truncated: p.truncated,
        };
      },
      { fresh: true },
    );
  }
}

function namesFrom(t: Topology): Map<string, string> {
  return new Map([...t.networks.values()].map((n) => [n.id, n.name]));
}

function specOf(p: Policy): Spec {
  return { selector: p.selector, networkIds: p.networkIds, ingress: p.ingress, egress: p.egress };
}

function networkIdsOf(s: Spec): string[] {
  const out = [...s.networkIds];
  for (const rs of [s.ingress, s.egress])
    for (const r of rs ?? [])
      for (const p of r.peers) if (!isCidrPeer(p)) out.push(...p.networkIds);
  return out;
}

function view(r: PolicyRow, names: ReadonlyMap<string, string>) {
  const named = (ids: readonly string[]) =>
    ids.filter((id) => names.has(id)).map((id) => names.get(id)!);
  const rules = (rs: readonly PolicyRule[] | null) =>
    rs === null
      ? null
      : rs.map((rule) => ({
          peers: rule.peers.map((p) =>
            isCidrPeer(p)
              ? { cidr: p.cidr, except: [...p.except] }
              : {
                  selector: p.selector,
                  networkIds: [...p.networkIds],
                  networks: named(p.networkIds),
                },
          ),
          ports: rule.ports.map((x) => ({
            protocol: x.protocol,
            port: x.port,
            endPort: x.endPort,
          })),
        }));
  return {
    id: r.id,
    name: r.name,
    selector: r.spec.selector,
    networkIds: [...r.spec.networkIds],
    networks: named(r.spec.networkIds),
    ingress: rules(r.spec.ingress),
    egress: rules(r.spec.egress),
    revision: Number(r.revision),
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}
