/**
 * The engine's incremental policy layer. It holds, per instance that some policy selects,
 * its `policy` resource and host; per peer set in use, its members and the hosts whose
 * chains name it (with reference counts); and an index network → sets an instance of that
 * network may belong to. A change costs what it touches:
 * - an instance created, deleted, moved or relabelled: its own chains are recomputed
 *   (O(policies)), and its membership is re-evaluated in the sets of its network's index
 *   entry; each membership change is one `pmember` write on each host naming the set —
 *   O(hosts referencing it);
 * - a policy created, changed or deleted: the chains of the instances it selected or now
 *   selects (its networks' instances are scanned, all instances when it names none);
 * - a network or router: the sets of the networks whose reach changed are recomputed;
 * - a host that appears or goes: its instances' chains.
 * Everything is decided by the same functions as the reference (`compile.ts`).
 */
import type { Instance, Policy } from '../../../model/src/index.js';
import { matchesSelector, policySelects } from '../../../model/src/index.js';
import { resourceEquals } from '../diff.js';
import type { Resource, ResourceOf } from '../resources.js';
import type { TopologyIndex } from '../topology-index.js';
import { instancePolicy, memberResource, reachOf, setMembers, type PeerSet } from './compile.js';

/** Writes one key of a host's state (undefined: delete). */
export type PolicyWrite = (hostId: string, key: string, r: Resource | undefined) => void;

class SetNode {
  /** Members by instance id. The same objects are written to every referencing host. */
  readonly members = new Map<string, ResourceOf<'pmember'>>();
  /** Referencing hosts → number of their chains naming the set. */
  readonly hosts = new Map<string, number>();
  /** The networks under which the set is indexed. */
  indexed: readonly string[] = [];

  constructor(readonly set: PeerSet) {}
}

interface InstanceNode {
  readonly hostId: string;
  readonly resource: ResourceOf<'policy'>;
  readonly sets: readonly string[];
}

export interface PolicyStats {
  /** Instances whose chains were computed. */
  instancesComputed: number;
  /** Peer sets whose membership was computed from scratch. */
  setsComputed: number;
  /** Membership changes (one instance entering or leaving one set). */
  membershipChanges: number;
}

export class PolicyLayer {
  private readonly instances = new Map<string, InstanceNode>();
  private readonly sets = new Map<string, SetNode>();
  private readonly byNetwork = new Map<string, Set<SetNode>>();

  // What the current apply made dirty.
  private readonly dirty = new Set<string>();
  /** Instances whose set memberships must be re-evaluated, with their previous version. */
  private readonly moved = new Map<string, Instance | null>();
  private readonly reach = new Set<string>();

  readonly stats: PolicyStats = { instancesComputed: 0, setsComputed: 0, membershipChanges: 0 };

  constructor(
    private readonly ix: TopologyIndex,
    private readonly write: PolicyWrite,
  ) {}

  /** Everything from scratch (the engine's initial build). */
  init(): void {
    for (const id of this.ix.instances.keys()) this.dirty.add(id);
  }

  /** Number of peer sets in use and of selected instances. */
  size(): { sets: number; instances: number } {
    return { sets: this.sets.size, instances: this.instances.size };
  }

  // ---- change notifications (called with the index before or after, as noted) ------------

  /** An instance changes; `old` is the version before (null: created). Index: either. */
  instanceChanged(old: Instance | null, id: string): void {
    this.dirty.add(id);
    if (!this.moved.has(id)) this.moved.set(id, old);
  }

  /** A policy changes (called before the index is updated, then `policyApplied` after). */
  policyChanged(old: Policy | undefined, next: Policy | undefined): void {
    for (const p of [old, next]) {
      if (!p) continue;
      const nets = p.networkIds.length > 0 ? p.networkIds : [...this.ix.networks.keys()];
      for (const n of nets) {
        for (const i of this.ix.instancesOfNetwork(n)) {
          if (policySelects(p, i.networkId, i.labels)) this.dirty.add(i.id);
        }
      }
    }
  }

  /** A network's reach (itself and its router peers) may change. Call before and after. */
  reachChanged(networkId: string): void {
    this.reach.add(networkId);
    for (const p of this.ix.peersIncludingMissing(networkId)) this.reach.add(p);
  }

  /** A network appears or goes: its instances' chains (call before and after the index change). */
  networkInstances(networkId: string): void {
    for (const i of this.ix.instancesOfNetwork(networkId)) this.dirty.add(i.id);
  }

  /** A host appears or goes: its instances' chains. */
  hostChanged(hostId: string): void {
    for (const n of this.ix.localNetworks(hostId)) {
      for (const i of this.ix.instancesOn(n, hostId)) this.dirty.add(i.id);
    }
    for (const [id, node] of this.instances) if (node.hostId === hostId) this.dirty.add(id);
  }

  // ---- the end of an apply ----------------------------------------------------------------

  flush(): void {
    if (this.reach.size > 0) {
      for (const s of [...this.sets.values()]) {
        if (this.reach.has(s.set.network)) this.recomputeSet(s);
      }
    }
    // Leaving before joining: an address freed and reused within one apply keeps its key.
    const joins: [SetNode, string, string][] = [];
    for (const [id, old] of this.moved) this.membership(id, old, joins);
    for (const [s, id, ip] of joins) {
      const r = memberResource(s.set.name, ip);
      s.members.set(id, r);
      for (const h of s.hosts.keys()) this.write(h, r.key, r);
    }
    for (const id of this.dirty) this.chains(id);
    this.dirty.clear();
    this.moved.clear();
    this.reach.clear();
  }

  /** Re-evaluates one instance's membership in the sets of its old and new network. */
  private membership(id: string, old: Instance | null, joins: [SetNode, string, string][]): void {
    const cur = this.ix.instances.get(id) ?? null;
    const candidates = new Set<SetNode>();
    for (const i of [old, cur]) {
      if (!i) continue;
      for (const s of this.byNetwork.get(i.networkId) ?? []) candidates.add(s);
    }
    for (const s of candidates) {
      // `indexed` is reach(N) ∩ the peer's networks, kept current by recomputeSet.
      const want =
        cur &&
        this.ix.networks.has(cur.networkId) &&
        s.indexed.includes(cur.networkId) &&
        matchesSelector(s.set.peer.selector, cur.labels)
          ? cur.ip
          : null;
      const have = s.members.get(id);
      if ((have?.spec.address ?? null) === want) continue;
      this.stats.membershipChanges++;
      if (have) {
        s.members.delete(id);
        for (const h of s.hosts.keys()) this.write(h, have.key, undefined);
      }
      if (want !== null) joins.push([s, id, want]);
    }
  }

  /** Recomputes one instance's chains and moves its set references. */
  private chains(id: string): void {
    const cur = this.ix.instances.get(id);
    const old = this.instances.get(id);
    this.stats.instancesComputed++;
    const next = cur ? instancePolicy(this.ix, cur) : null;
    if (old && next && old.hostId === cur!.hostId && resourceEquals(old.resource, next.resource))
      return;
    if (next) {
      const hostId = cur!.hostId;
      for (const set of next.sets.values()) this.ref(set, hostId);
      this.instances.set(id, { hostId, resource: next.resource, sets: [...next.sets.keys()] });
      if (old && old.hostId !== hostId) this.write(old.hostId, old.resource.key, undefined);
      this.write(hostId, next.resource.key, next.resource);
    } else {
      this.instances.delete(id);
      if (old) this.write(old.hostId, old.resource.key, undefined);
    }
    if (old) for (const name of old.sets) this.deref(name, old.hostId);
  }

  private ref(set: PeerSet, hostId: string): void {
    let s = this.sets.get(set.name);
    if (!s) {
      this.sets.set(set.name, (s = new SetNode(set)));
      this.recomputeSet(s);
    }
    const n = s.hosts.get(hostId) ?? 0;
    s.hosts.set(hostId, n + 1);
    if (n === 0) for (const r of s.members.values()) this.write(hostId, r.key, r);
  }

  private deref(name: string, hostId: string): void {
    const s = this.sets.get(name)!;
    const n = s.hosts.get(hostId)! - 1;
    if (n > 0) return void s.hosts.set(hostId, n);
    s.hosts.delete(hostId);
    for (const r of s.members.values()) this.write(hostId, r.key, undefined);
    if (s.hosts.size === 0) {
      this.sets.delete(name);
      this.unindex(s);
    }
  }

  /** The set's members and index entries from scratch; differences go to its hosts. */
  private recomputeSet(s: SetNode): void {
    this.stats.setsComputed++;
    this.unindex(s);
    const ids = s.set.peer.networkIds;
    s.indexed = reachOf(this.ix, s.set.network).filter((n) => ids.length === 0 || ids.includes(n));
    for (const n of s.indexed) {
      let set = this.byNetwork.get(n);
      if (!set) this.byNetwork.set(n, (set = new Set()));
      set.add(s);
    }
    const next = new Map<string, ResourceOf<'pmember'>>();
    for (const i of setMembers(this.ix, s.set)) {
      const have = s.members.get(i.id);
      next.set(i.id, have?.spec.address === i.ip ? have : memberResource(s.set.name, i.ip));
    }
    for (const [id, r] of s.members) {
      if (next.get(id) === r) continue;
      for (const h of s.hosts.keys()) this.write(h, r.key, undefined);
    }
    for (const [id, r] of next) {
      if (s.members.get(id) === r) continue;
      for (const h of s.hosts.keys()) this.write(h, r.key, r);
    }
    s.members.clear();
    for (const [id, r] of next) s.members.set(id, r);
  }

  private unindex(s: SetNode): void {
    for (const n of s.indexed) {
      const set = this.byNetwork.get(n);
      set?.delete(s);
      if (set?.size === 0) this.byNetwork.delete(n);
    }
    s.indexed = [];
  }
}
