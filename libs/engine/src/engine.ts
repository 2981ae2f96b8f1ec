import type {
  Host,
  HostBlock,
  Instance,
  Network,
  Router,
  Topology,
} from '../../model/src/index.js';
import { computeHost, EMPTY_STATE, type DesiredState } from './compute.js';
import { diff, isEmptyDiff, type Diff } from './diff.js';
import { effectiveSpeakers, TopologyIndex } from './topology-index.js';

/** An API-level change to the topology. Upserts carry the whole new object. */
export type Change =
  | { readonly type: 'host.upsert'; readonly host: Host }
  | { readonly type: 'host.delete'; readonly id: string }
  | { readonly type: 'network.upsert'; readonly network: Network }
  | { readonly type: 'network.delete'; readonly id: string }
  | { readonly type: 'instance.upsert'; readonly instance: Instance }
  | { readonly type: 'instance.delete'; readonly id: string }
  /** Mobility: same IP and MAC, another host. */
  | { readonly type: 'instance.move'; readonly id: string; readonly hostId: string }
  | { readonly type: 'block.upsert'; readonly block: HostBlock }
  | { readonly type: 'block.delete'; readonly cidr: string }
  | { readonly type: 'router.upsert'; readonly router: Router }
  | { readonly type: 'router.delete'; readonly id: string };

export interface HostUpdate {
  /** The host's complete new desired state (empty when the host was deleted). */
  readonly state: DesiredState;
  /** The ordered changes from the previous state. Never empty. */
  readonly diff: Diff;
}

export interface EngineUpdate {
  /** Hosts whose desired state changed, with their new state and diff. */
  readonly hosts: ReadonlyMap<string, HostUpdate>;
  /** How many hosts were recomputed (a superset of `hosts`). */
  readonly recomputed: number;
}

/**
 * The incremental desired-state engine the controller holds in memory. Pure and
 * synchronous: no I/O, no timers. Each change names the hosts that may depend on what it
 * touched (through the indices of TopologyIndex), only those are recomputed — with the same
 * `computeHost` as a full recompute — and diffed against their previous state. Output
 * depends only on the current topology, never on the order or history of changes.
 */
export class DesiredStateEngine {
  private readonly ix: TopologyIndex;
  private readonly states = new Map<string, DesiredState>();

  constructor(topology: Topology) {
    this.ix = TopologyIndex.from(topology);
    for (const id of this.ix.hosts.keys()) this.states.set(id, computeHost(this.ix, id));
  }

  /** The current desired state of a host (empty for unknown hosts). */
  stateOf(hostId: string): DesiredState {
    return this.states.get(hostId) ?? EMPTY_STATE;
  }

  /** Ids of hosts with a (possibly empty) state. */
  hostIds(): IterableIterator<string> {
    return this.states.keys();
  }

  /** A snapshot of the current topology. */
  topology(): Topology {
    return this.ix.toTopology();
  }

  /** Applies one change or a batch (recomputing each affected host once). */
  apply(changes: Change | readonly Change[]): EngineUpdate {
    const list: readonly Change[] = Array.isArray(changes) ? changes : [changes as Change];
    const affected = new Set<string>();
    const reflectorsBefore = new Set(this.ix.reflectors);
    let bgpDirty = false;
    for (const c of list) bgpDirty = this.mutate(c, affected) || bgpDirty;
    this.widenForBgp(affected, reflectorsBefore, bgpDirty);

    const hosts = new Map<string, HostUpdate>();
    for (const id of affected) {
      const next: DesiredState = this.ix.hosts.has(id) ? computeHost(this.ix, id) : EMPTY_STATE;
      const d = diff(this.stateOf(id), next);
      if (this.ix.hosts.has(id)) this.states.set(id, next);
      else this.states.delete(id);
      if (!isEmptyDiff(d)) hosts.set(id, { state: next, diff: d });
    }
    return { hosts, recomputed: affected.size };
  }

  /**
   * Applies one change to the index and adds the hosts whose state may depend on it, before
   * and after, to `affected`. Returns true when BGP peerings may have changed for reasons
   * other than a host's bgp presence (a speaker's address/ASN or the reflector set).
   */
  private mutate(c: Change, affected: Set<string>): boolean {
    const ix = this.ix;
    switch (c.type) {
      case 'instance.upsert':
      case 'instance.move':
      case 'instance.delete': {
        const old = ix.instances.get(c.type === 'instance.upsert' ? c.instance.id : c.id);
        let next: Instance | null = null;
        if (c.type === 'instance.upsert') next = c.instance;
        else if (c.type === 'instance.move') next = old ? { ...old, hostId: c.hostId } : null;
        const joined = next !== null && !ix.hasInstancesOn(next.networkId, next.hostId);
        if (next) ix.setInstance(next);
        else if (old) ix.deleteInstance(old.id);
        // Other hosts depend on an instance only through (a) per-instance entries (VXLAN
        // overlay and fabric: FDB/neighbour) or (b) the set of hosts with instances of the
        // network (flood lists, routes, presence). When neither applies, only its own host
        // changes. Hosts in present(N) before and after differ at most by the host itself.
        if (old) {
          affected.add(old.hostId);
          const left = !ix.hasInstancesOn(old.networkId, old.hostId);
          if (left || hasPerInstanceRemoteState(ix, old.networkId)) {
            ix.presentHosts(old.networkId, affected);
          }
        }
        if (next) {
          affected.add(next.hostId);
          if (joined || hasPerInstanceRemoteState(ix, next.networkId)) {
            ix.presentHosts(next.networkId, affected);
          }
        }
        return false;
      }
      case 'network.upsert':
      case 'network.delete': {
        const id = c.type === 'network.upsert' ? c.network.id : c.id;
        ix.presentHosts(id, affected);
        if (c.type === 'network.upsert') ix.setNetwork(c.network);
        else ix.deleteNetwork(id);
        return false;
      }
      case 'router.upsert':
      case 'router.delete': {
        const id = c.type === 'router.upsert' ? c.router.id : c.id;
        const nets = new Set(ix.routers.get(id)?.networkIds ?? []);
        for (const n of nets) ix.presentHosts(n, affected);
        if (c.type === 'router.upsert') {
          ix.setRouter(c.router);
          for (const n of c.router.networkIds) nets.add(n);
        } else ix.deleteRouter(id);
        for (const n of nets) ix.presentHosts(n, affected);
        return false;
      }
      case 'block.upsert':
      case 'block.delete': {
        const cidr = c.type === 'block.upsert' ? c.block.cidr : c.cidr;
        const old = ix.blocks.get(cidr);
        if (old) {
          ix.presentHosts(old.networkId, affected);
          affected.add(old.hostId);
        }
        if (c.type === 'block.upsert') {
          ix.setBlock(c.block);
          ix.presentHosts(c.block.networkId, affected);
          affected.add(c.block.hostId);
        } else ix.deleteBlock(cidr);
        return false;
      }
      case 'host.upsert':
      case 'host.delete': {
        const id = c.type === 'host.upsert' ? c.host.id : c.id;
        const old = ix.hosts.get(id);
        const next = c.type === 'host.upsert' ? c.host : undefined;
        affected.add(id);
        // Other hosts reference this one through its instances (FDB, flood list, routes).
        for (const n of ix.localNetworks(id)) ix.presentHosts(n, affected);
        const wasReflector = ix.reflectors.has(id);
        const wasSpeakerish = ix.bgpHosts.has(id) || wasReflector;
        if (next) ix.setHost(next);
        else ix.deleteHost(id);
        const isSpeakerish = ix.hasBgpPresence(id) || ix.reflectors.has(id);
        return (
          (wasSpeakerish || isSpeakerish) &&
          (!old ||
            !next ||
            old.underlayIp !== next.underlayIp ||
            old.asn !== next.asn ||
            ix.reflectors.has(id) !== wasReflector)
        );
      }
    }
  }

  /** Adds the speakers whose peer lists change when the set of speakers changes. */
  private widenForBgp(
    affected: Set<string>,
    reflectorsBefore: ReadonlySet<string>,
    bgpDirty: boolean,
  ): void {
    const ix = this.ix;
    const toggled = ix.refreshBgp(affected);
    if (!bgpDirty && toggled.length === 0) return;
    const bgpBefore = new Set(ix.bgpHosts);
    for (const h of toggled) {
      if (bgpBefore.has(h)) bgpBefore.delete(h);
      else bgpBefore.add(h);
    }
    if (!bgpDirty && ix.reflectors.size > 0) {
      // Reflector mode, reflector set unchanged: only reflectors peer with a joining or
      // leaving speaker (which is itself in `affected`).
      for (const r of ix.reflectors) affected.add(r);
      return;
    }
    for (const h of effectiveSpeakers(bgpBefore, reflectorsBefore)) affected.add(h);
    for (const h of effectiveSpeakers(ix.bgpHosts, ix.reflectors)) affected.add(h);
  }
}

/**
 * Models whose hosts hold an entry for every remote instance (conservative when unknown):
 * VXLAN overlay, fabric, and vlan attached to a router (neighbours behind the shared
 * gateway MAC, see models/vlan.ts).
 */
function hasPerInstanceRemoteState(ix: TopologyIndex, networkId: string): boolean {
  const n = ix.networks.get(networkId);
  return (
    !n ||
    n.model === 'fabric' ||
    (n.model === 'overlay' && n.encapsulation === 'vxlan') ||
    (n.model === 'vlan' && ix.routersOf(networkId).length > 0)
  );
}
