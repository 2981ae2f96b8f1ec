/**
 * The preview of a policy change (`?dryRun=true`): computed from the same per-host policy
 * resources the agents enforce, before and after the change, without committing anything.
 */
import { policySelects } from '../../../model/src/index.js';
import type { Instance, Policy, Topology } from '../../../model/src/index.js';
import { resourceEquals } from '../diff.js';
import type { ResourceOf } from '../resources.js';
import { TopologyIndex } from '../topology-index.js';
import { instancePolicy, policyResources, reachOf, setMembers, type PeerSet } from './compile.js';
import {
  chainAllows,
  describeSpace,
  intersect,
  isEmpty,
  subtract,
  type FlowPorts,
  type PortSpace,
} from './evaluate.js';

export type { FlowPorts } from './evaluate.js';

/** Traffic from instance `from` to instance `to` (ids) whose verdict changes on `ports`. */
export interface FlowChange {
  readonly from: string;
  readonly to: string;
  readonly ports: readonly FlowPorts[];
}

export interface PolicyPreview {
  /** Instance ids that become selected by the policy / are no longer selected. */
  readonly selected: { readonly added: readonly string[]; readonly removed: readonly string[] };
  /** Flows allowed now that the change would deny. */
  readonly denied: readonly FlowChange[];
  /** Flows denied now that the change would allow. */
  readonly allowed: readonly FlowChange[];
  /** Host ids whose desired state the change would alter. */
  readonly hosts: readonly string[];
  /** True when `denied`/`allowed` were cut at `limit` pairs each. */
  readonly truncated: boolean;
}

export interface PreviewOptions {
  /** Most flow changes listed per list (default 1,000). */
  readonly limit?: number;
}

/**
 * What replacing `before` by `after` would change (`before` null: a create; `after` null: a
 * delete). `topology` is the current one (it holds `before` when not null).
 *
 * Only instances the policy selects before or after can change verdicts (a policy's rules
 * apply to its selected instances only), so the flows examined are those between such an
 * instance and every instance that can reach it at all (reach(N): its network and the
 * networks sharing a router with it), both ways. Each verdict is computed from the `policy`
 * resources and peer sets the hosts would hold (compile.ts), with both ends' chains: the
 * source's egress and the destination's ingress.
 */
export function previewPolicy(
  topology: Topology,
  before: Policy | null,
  after: Policy | null,
  opts: PreviewOptions = {},
): PolicyPreview {
  const limit = opts.limit ?? 1000;
  const id = (after ?? before)?.id;
  const policiesBefore = new Map(topology.policies ?? []);
  if (before) policiesBefore.set(before.id, before);
  const policiesAfter = new Map(policiesBefore);
  if (after) policiesAfter.set(after.id, after);
  else if (id) policiesAfter.delete(id);
  const ixBefore = TopologyIndex.from({ ...topology, policies: policiesBefore });
  const ixAfter = TopologyIndex.from({ ...topology, policies: policiesAfter });

  const selects = (p: Policy | null, i: Instance) =>
    p !== null && policySelects(p, i.networkId, i.labels);
  const added: string[] = [];
  const removed: string[] = [];
  const changed: Instance[] = [];
  for (const i of ixBefore.instances.values()) {
    const b = selects(before, i);
    const a = selects(after, i);
    if (a && !b) added.push(i.id);
    if (b && !a) removed.push(i.id);
    if (a || b) changed.push(i);
  }

  const sides = [new Side(ixBefore), new Side(ixAfter)] as const;
  const denied: FlowChange[] = [];
  const allowed: FlowChange[] = [];
  let truncated = false;
  const seen = new Set<string>();
  const examine = (src: Instance, dst: Instance) => {
    const key = `${src.id}>${dst.id}`;
    if (src.id === dst.id || seen.has(key)) return;
    seen.add(key);
    const [vb, va] = sides.map((s) => s.verdict(src, dst));
    const lost = subtract(vb, va);
    const gained = subtract(va, vb);
    for (const [space, list] of [
      [lost, denied],
      [gained, allowed],
    ] as const) {
      if (isEmpty(space)) continue;
      if (list.length >= limit) truncated = true;
      else list.push({ from: src.id, to: dst.id, ports: describeSpace(space) });
    }
  };
  for (const x of changed) {
    if (!ixBefore.networks.has(x.networkId)) continue;
    for (const n of reachOf(ixBefore, x.networkId)) {
      for (const y of ixBefore.instancesOfNetwork(n)) {
        examine(y, x);
        examine(x, y);
      }
    }
  }

  const hosts: string[] = [];
  for (const h of new Set(changed.map((i) => i.hostId))) {
    const rb = policyResources(ixBefore, h);
    const ra = new Map(policyResources(ixAfter, h).map((r) => [r.key, r]));
    const same =
      rb.length === ra.size &&
      rb.every((r) => {
        const o = ra.get(r.key);
        return o !== undefined && resourceEquals(o, r);
      });
    if (!same) hosts.push(h);
  }
  return { selected: { added, removed }, denied, allowed, hosts: hosts.sort(), truncated };
}

/** One side (before or after) of a preview: chains per instance and set members, cached. */
class Side {
  private readonly chains = new Map<string, ResourceOf<'policy'> | null>();
  private readonly members = new Map<string, Set<string>>();
  private readonly sets = new Map<string, PeerSet>();
  private readonly inSet = (set: string, address: string): boolean => {
    let m = this.members.get(set);
    if (!m) {
      const s = this.sets.get(set);
      m = new Set(s ? setMembers(this.ix, s).map((i) => i.ip) : []);
      this.members.set(set, m);
    }
    return m.has(address);
  };

  constructor(private readonly ix: TopologyIndex) {}

  private chain(i: Instance): ResourceOf<'policy'> | null {
    let c = this.chains.get(i.id);
    if (c === undefined) {
      const p = instancePolicy(this.ix, i);
      if (p) for (const [name, s] of p.sets) this.sets.set(name, s);
      this.chains.set(i.id, (c = p?.resource ?? null));
    }
    return c;
  }

  /** New connections from src to dst that both ends' chains let through. */
  verdict(src: Instance, dst: Instance): PortSpace {
    const out = this.chain(src)?.spec.egress ?? null;
    const inn = this.chain(dst)?.spec.ingress ?? null;
    return intersect(chainAllows(out, dst.ip, this.inSet), chainAllows(inn, src.ip, this.inSet));
  }
}
