import {
  ROUTE_REFLECTOR_LABEL,
  type FloatingIp,
  type Host,
  type HostBlock,
  type Instance,
  type Network,
  type Policy,
  type Router,
  type Topology,
} from '../../model/src/index.js';

/**
 * The engine's in-memory view of a Topology with the indices incremental computation needs:
 * network → host → instances, host → networks with instances, network → routers,
 * network → host → blocks. Everything is keyed by id; entities may reference missing
 * entities (a deleted host or network): queries skip those, i.e. a missing referent fails
 * closed and produces no state.
 *
 * Definitions used throughout the engine:
 * - inst(N): hosts with at least one instance of N.
 * - peers(N): other existing networks that share an existing router with N.
 * - present(N): inst(N) ∪ inst(M) for M ∈ peers(N) — the hosts that hold state for N (a
 *   host with instances of N routes locally into every network N shares a router with).
 */
export class TopologyIndex {
  readonly hosts = new Map<string, Host>();
  readonly networks = new Map<string, Network>();
  readonly instances = new Map<string, Instance>();
  readonly routers = new Map<string, Router>();
  /** By CIDR (blocks never overlap). */
  readonly blocks = new Map<string, HostBlock>();
  readonly policies = new Map<string, Policy>();
  readonly floatingIps = new Map<string, FloatingIp>();

  private readonly byNetHost = new Map<string, Map<string, Map<string, Instance>>>();
  private readonly netsByHost = new Map<string, Map<string, number>>();
  private readonly routersByNet = new Map<string, Set<string>>();
  private readonly blocksByNetHost = new Map<string, Map<string, Set<string>>>();
  /** byNetHost's instance maps, sorted by id (dropped when the map changes). */
  private readonly sortedCache = new WeakMap<ReadonlyMap<string, Instance>, readonly Instance[]>();
  /** Existing hosts labelled as BGP route reflectors. */
  readonly reflectors = new Set<string>();
  /** Hosts whose present networks include a `routed`/`bgp` network (maintained by refreshBgp). */
  readonly bgpHosts = new Set<string>();
  private speakerCache: readonly Host[] | null = null;
  /** Bound floating IPs by instance id, and the networks their instances were in when set. */
  private readonly floatingByInstance = new Map<string, FloatingIp>();
  private readonly floatingByNet = new Map<string, Set<string>>();
  private readonly floatingNet = new Map<string, string>();

  static from(t: Topology): TopologyIndex {
    const ix = new TopologyIndex();
    for (const h of t.hosts.values()) ix.setHost(h);
    for (const n of t.networks.values()) ix.setNetwork(n);
    for (const i of t.instances.values()) ix.setInstance(i);
    for (const b of t.blocks) ix.setBlock(b);
    for (const r of t.routers.values()) ix.setRouter(r);
    for (const p of t.policies?.values() ?? []) ix.policies.set(p.id, p);
    for (const f of t.floatingIps?.values() ?? []) ix.setFloating(f);
    ix.refreshBgp(ix.hosts.keys());
    return ix;
  }

  toTopology(): Topology {
    return {
      hosts: new Map(this.hosts),
      networks: new Map(this.networks),
      instances: new Map(this.instances),
      blocks: [...this.blocks.values()],
      routers: new Map(this.routers),
      policies: new Map(this.policies),
      floatingIps: new Map(this.floatingIps),
    };
  }

  // ---- mutations -------------------------------------------------------------------------

  setHost(h: Host): void {
    this.hosts.set(h.id, h);
    if (h.labels[ROUTE_REFLECTOR_LABEL] === 'true') this.reflectors.add(h.id);
    else this.reflectors.delete(h.id);
    this.speakerCache = null;
  }

  deleteHost(id: string): void {
    this.hosts.delete(id);
    this.reflectors.delete(id);
    this.speakerCache = null;
  }

  setNetwork(n: Network): void {
    this.networks.set(n.id, n);
  }

  deleteNetwork(id: string): void {
    this.networks.delete(id);
  }

  setInstance(i: Instance): void {
    this.deleteInstance(i.id);
    this.instances.set(i.id, i);
    let hosts = this.byNetHost.get(i.networkId);
    if (!hosts) this.byNetHost.set(i.networkId, (hosts = new Map<string, Map<string, Instance>>()));
    let insts = hosts.get(i.hostId);
    if (!insts) hosts.set(i.hostId, (insts = new Map<string, Instance>()));
    insts.set(i.id, i);
    this.sortedCache.delete(insts);
    let nets = this.netsByHost.get(i.hostId);
    if (!nets) this.netsByHost.set(i.hostId, (nets = new Map<string, number>()));
    nets.set(i.networkId, (nets.get(i.networkId) ?? 0) + 1);
  }

  deleteInstance(id: string): void {
    const old = this.instances.get(id);
    if (!old) return;
    this.instances.delete(id);
    const hosts = this.byNetHost.get(old.networkId)!;
    const insts = hosts.get(old.hostId)!;
    insts.delete(id);
    this.sortedCache.delete(insts);
    if (insts.size === 0) hosts.delete(old.hostId);
    if (hosts.size === 0) this.byNetHost.delete(old.networkId);
    const nets = this.netsByHost.get(old.hostId)!;
    const c = nets.get(old.networkId)! - 1;
    if (c === 0) nets.delete(old.networkId);
    else nets.set(old.networkId, c);
    if (nets.size === 0) this.netsByHost.delete(old.hostId);
  }

  setRouter(r: Router): void {
    this.deleteRouter(r.id);
    this.routers.set(r.id, r);
    for (const nid of r.networkIds) {
      let rs = this.routersByNet.get(nid);
      if (!rs) this.routersByNet.set(nid, (rs = new Set<string>()));
      rs.add(r.id);
    }
  }

  deleteRouter(id: string): void {
    const old = this.routers.get(id);
    if (!old) return;
    this.routers.delete(id);
    for (const nid of old.networkIds) {
      const rs = this.routersByNet.get(nid);
      rs?.delete(id);
      if (rs?.size === 0) this.routersByNet.delete(nid);
    }
  }

  setBlock(b: HostBlock): void {
    this.deleteBlock(b.cidr);
    this.blocks.set(b.cidr, b);
    let hosts = this.blocksByNetHost.get(b.networkId);
    if (!hosts) this.blocksByNetHost.set(b.networkId, (hosts = new Map<string, Set<string>>()));
    let cidrs = hosts.get(b.hostId);
    if (!cidrs) hosts.set(b.hostId, (cidrs = new Set<string>()));
    cidrs.add(b.cidr);
  }

  deleteBlock(cidr: string): void {
    const old = this.blocks.get(cidr);
    if (!old) return;
    this.blocks.delete(cidr);
    const hosts = this.blocksByNetHost.get(old.networkId)!;
    const cidrs = hosts.get(old.hostId)!;
    cidrs.delete(cidr);
    if (cidrs.size === 0) hosts.delete(old.hostId);
    if (hosts.size === 0) this.blocksByNetHost.delete(old.networkId);
  }

  /**
   * A floating IP is bound to its instance id; it counts for the instance's network once
   * the instance exists (the database's foreign key makes that at once; the engine re-sets
   * it when the instance arrives or changes network, and unbinds it when the instance goes).
   */
  setFloating(f: FloatingIp): void {
    this.deleteFloating(f.id);
    this.floatingIps.set(f.id, f);
    if (f.instanceId === null) return;
    this.floatingByInstance.set(f.instanceId, f);
    const inst = this.instances.get(f.instanceId);
    if (!inst) return;
    let ids = this.floatingByNet.get(inst.networkId);
    if (!ids) this.floatingByNet.set(inst.networkId, (ids = new Set<string>()));
    ids.add(f.id);
    this.floatingNet.set(f.id, inst.networkId);
  }

  deleteFloating(id: string): void {
    const old = this.floatingIps.get(id);
    if (!old) return;
    this.floatingIps.delete(id);
    if (old.instanceId !== null && this.floatingByInstance.get(old.instanceId)?.id === id) {
      this.floatingByInstance.delete(old.instanceId);
    }
    const net = this.floatingNet.get(id);
    if (net === undefined) return;
    this.floatingNet.delete(id);
    const ids = this.floatingByNet.get(net)!;
    ids.delete(id);
    if (ids.size === 0) this.floatingByNet.delete(net);
  }

  // ---- queries ---------------------------------------------------------------------------

  /** The floating IP bound to an instance, if any. */
  floatingOf(instanceId: string): FloatingIp | undefined {
    return this.floatingByInstance.get(instanceId);
  }

  /** The network of the instance a floating IP was bound to when set, if bound. */
  floatingNetwork(id: string): string | undefined {
    return this.floatingNet.get(id);
  }

  /** True when a floating IP is bound to an instance of the network. */
  hasFloating(networkId: string): boolean {
    return this.floatingByNet.has(networkId);
  }

  /** inst(N): ids of hosts with instances of the network (hosts may not exist). */
  instanceHostIds(networkId: string): Iterable<string> {
    return this.byNetHost.get(networkId)?.keys() ?? [];
  }

  /** Every instance of a network (on any host). */
  *instancesOfNetwork(networkId: string): Iterable<Instance> {
    for (const insts of this.byNetHost.get(networkId)?.values() ?? []) yield* insts.values();
  }

  /** Instances of a network on a host, in insertion order. */
  instancesOn(networkId: string, hostId: string): Iterable<Instance> {
    return this.byNetHost.get(networkId)?.get(hostId)?.values() ?? [];
  }

  /** Instances of a network on a host, sorted by id (cached until they change). */
  sortedInstancesOn(networkId: string, hostId: string): readonly Instance[] {
    const insts = this.byNetHost.get(networkId)?.get(hostId);
    if (!insts) return NO_INSTANCES;
    let sorted = this.sortedCache.get(insts);
    if (!sorted) {
      // Default sort of the ids (code unit order, as cmp) runs without a JS comparator.
      sorted = [...insts.keys()].sort().map((id) => insts.get(id)!);
      this.sortedCache.set(insts, sorted);
    }
    return sorted;
  }

  hasInstancesOn(networkId: string, hostId: string): boolean {
    return this.byNetHost.get(networkId)?.has(hostId) ?? false;
  }

  /** Blocks of a network owned by a host, sorted. */
  blocksOf(networkId: string, hostId: string): string[] {
    const s = this.blocksByNetHost.get(networkId)?.get(hostId);
    return s ? [...s].sort() : [];
  }

  /** Existing routers attached to a network, sorted by id. */
  routersOf(networkId: string): string[] {
    const rs = this.routersByNet.get(networkId);
    if (!rs) return [];
    return [...rs].filter((r) => this.routers.has(r)).sort();
  }

  /** peers(N): existing networks sharing an existing router with N, sorted, without N. */
  peers(networkId: string): string[] {
    const rs = this.routersByNet.get(networkId);
    if (!rs) return [];
    const out = new Set<string>();
    for (const rid of rs) {
      const r = this.routers.get(rid);
      if (!r) continue;
      for (const nid of r.networkIds) {
        if (nid !== networkId && this.networks.has(nid)) out.add(nid);
      }
    }
    return [...out].sort();
  }

  /** Networks (existing) with instances on a host, unsorted. */
  localNetworks(hostId: string): string[] {
    const nets = this.netsByHost.get(hostId);
    if (!nets) return [];
    return [...nets.keys()].filter((n) => this.networks.has(n));
  }

  /** The networks a host holds state for (local ones and their router peers), sorted. */
  presentNetworks(hostId: string): string[] {
    const out = new Set<string>();
    for (const n of this.localNetworks(hostId)) {
      out.add(n);
      for (const p of this.peers(n)) out.add(p);
    }
    return [...out].sort();
  }

  /** present(N): ids of hosts that hold state for the network (may include missing hosts). */
  presentHosts(networkId: string, into = new Set<string>()): Set<string> {
    for (const h of this.instanceHostIds(networkId)) into.add(h);
    for (const p of this.peersIncludingMissing(networkId)) {
      for (const h of this.instanceHostIds(p)) into.add(h);
    }
    return into;
  }

  /** Like peers() but without filtering missing networks: a superset for affected-host sets. */
  peersIncludingMissing(networkId: string): Set<string> {
    const out = new Set<string>();
    for (const rid of this.routersByNet.get(networkId) ?? []) {
      for (const nid of this.routers.get(rid)?.networkIds ?? []) {
        if (nid !== networkId) out.add(nid);
      }
    }
    return out;
  }

  // ---- BGP speakers ----------------------------------------------------------------------

  hasBgpPresence(hostId: string): boolean {
    if (!this.hosts.has(hostId)) return false;
    for (const nid of this.presentNetworks(hostId)) {
      const n = this.networks.get(nid)!;
      if (n.model === 'routed' && n.routing === 'bgp') return true;
    }
    return false;
  }

  /** Re-evaluates bgpHosts membership for the given hosts; returns those that toggled. */
  refreshBgp(hostIds: Iterable<string>): string[] {
    const toggled: string[] = [];
    for (const h of hostIds) {
      const now = this.hasBgpPresence(h);
      if (now !== this.bgpHosts.has(h)) {
        toggled.push(h);
        if (now) this.bgpHosts.add(h);
        else this.bgpHosts.delete(h);
      }
    }
    if (toggled.length) this.speakerCache = null;
    return toggled;
  }

  /**
   * Hosts running a BGP speaker: hosts with bgp presence, plus every route reflector as soon
   * as there is at least one such host. Sorted by underlay IP.
   */
  speakers(): readonly Host[] {
    if (this.speakerCache) return this.speakerCache;
    const ids = effectiveSpeakers(this.bgpHosts, this.reflectors);
    const hosts = [...ids].map((id) => this.hosts.get(id)).filter((h): h is Host => !!h);
    hosts.sort((a, b) => cmp(a.underlayIp, b.underlayIp) || cmp(a.id, b.id));
    this.speakerCache = hosts;
    return hosts;
  }
}

const NO_INSTANCES: readonly Instance[] = [];

export function effectiveSpeakers(
  bgpHosts: ReadonlySet<string>,
  reflectors: ReadonlySet<string>,
): Set<string> {
  if (bgpHosts.size === 0) return new Set();
  return new Set([...bgpHosts, ...reflectors]);
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
