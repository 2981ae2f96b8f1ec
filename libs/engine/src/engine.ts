import type {
  FloatingIp,
  Host,
  HostBlock,
  Instance,
  Network,
  Policy,
  Router,
  Topology,
} from '../../model/src/index.js';
import { samePlacement } from '../../model/src/index.js';
import { bgpSpeaker, isSpeaker } from './bgp.js';
import { EMPTY_STATE, type DesiredState } from './compute.js';
import { diffAt, isEmptyDiff, jsonEquals, resourceEquals, type Diff } from './diff.js';
import { NETSET_KEY, netsetResource } from './egress.js';
import { emitLocal, NetworkOnHost, type HostSink, type NetworkView } from './models/model.js';
import { MODELS } from './models/registry.js';
import { bridgeName } from './names.js';
import { resource, type Resource } from './resources.js';
import {
  computeShare,
  Interner,
  ListSink,
  RemoteParts,
  Share,
  type RemotePart,
  shareFilter,
  type ShareAsks,
} from './share.js';
import { effectiveSpeakers, TopologyIndex } from './topology-index.js';
import { PolicyLayer, type PolicyStats } from './policy/layer.js';

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
  | { readonly type: 'router.delete'; readonly id: string }
  | { readonly type: 'policy.upsert'; readonly policy: Policy }
  | { readonly type: 'policy.delete'; readonly id: string }
  | { readonly type: 'floatingip.upsert'; readonly floatingIp: FloatingIp }
  | { readonly type: 'floatingip.delete'; readonly id: string };

export interface HostUpdate {
  /**
   * The host's complete new desired state (empty when the host was deleted): the engine's
   * live map, as `stateOf` returns it — valid until the next `apply`, copy it to keep it.
   */
  readonly state: DesiredState;
  /** The ordered changes from the previous state. Never empty. */
  readonly diff: Diff;
}

export interface EngineUpdate {
  /** Hosts whose desired state changed, with their new state and diff. */
  readonly hosts: ReadonlyMap<string, HostUpdate>;
  /** How many hosts the engine visited (a superset of `hosts`). */
  readonly recomputed: number;
}

/** How the changes of one type were processed (OVN's handled / recompute counters). */
export interface ChangeCounters {
  /** Turned into resource deltas only: no (network, host) share was recomputed for it. */
  handled: number;
  /** Made at least one (network, host) share be recomputed (or created or removed). */
  recomputed: number;
}

/** Counters since the engine was built (the initial full compute is not counted). */
export interface EngineStats {
  readonly changes: { readonly [T in Change['type']]: ChangeCounters };
  /** Writes to hosts' states: one resource set or deleted on one host. */
  readonly resourceOps: number;
  /** (network, host) shares computed from scratch (created or recomputed). */
  readonly sharesComputed: number;
  readonly sharesRemoved: number;
  /** Host-wide resources (sysctls, BGP speaker) re-evaluated for a host. */
  readonly hostWideComputed: number;
  /** Per-instance deltas that did not match the cached share, which was recomputed instead. */
  readonly fallbacks: number;
  /** Current number of (network, host) shares. */
  readonly shares: number;
  /** Current number of interned resource keys (resources stored once for many hosts). */
  readonly internedKeys: number;
  /** The policy layer: chains and sets computed, membership changes; sets in use. */
  readonly policy: PolicyStats & { readonly sets: number; readonly selectedInstances: number };
}

const IP_FORWARD = resource('sysctl', { name: 'net.ipv4.ip_forward', value: '1' });
const RP_FILTER = resource('sysctl', { name: 'net.ipv4.conf.all.rp_filter', value: '2' });
const BGP_KEY = 'bgp:speaker';
const NO_NETWORKS: ReadonlySet<string> = new Set();

/** A host's state: the union of its shares, and the host-wide resources. */
class HostNode {
  /** The live desired state (what `stateOf` returns), updated in place with the deltas. */
  readonly state = new Map<string, Resource>();
  /** Shares by network id: exactly the networks present on the host. */
  readonly shares = new Map<string, Share>();
  /**
   * Keys emitted by more than one share (the NBMA tunnel device and its GRE neighbours,
   * which every ipip/gre network of the host emits alike): each emitter's resource by
   * network id. The state holds the one of the smallest network id, as computeHost's
   * first-wins over networks in id order does.
   */
  dups: Map<string, Map<string, Resource>> | null = null;

  constructor(readonly id: string) {}
}

/** The bookkeeping of one `apply`. */
class Pass {
  /** host → key → the key's value before this apply (undefined: absent). */
  readonly before = new Map<string, Map<string, Resource | undefined>>();
  /** host → networks whose share must be recomputed; every host here is reconciled. */
  readonly dirty = new Map<string, Set<string>>();
  /** Hosts whose host-wide resources must be re-evaluated. */
  readonly hostWide = new Set<string>();
  /** Hosts a per-instance delta was applied to. */
  readonly visited = new Set<string>();
  /** The change being processed made a share recompute. */
  recomputing = false;
  /** The set of networks' CIDRs changed: every host holding the netset is re-evaluated. */
  netsetChanged = false;

  markDirty(hostId: string, networkId: string): void {
    let s = this.dirty.get(hostId);
    if (!s) this.dirty.set(hostId, (s = new Set()));
    s.add(networkId);
    this.recomputing = true;
  }

  isDirty(hostId: string, networkId: string): boolean {
    return this.dirty.get(hostId)?.has(networkId) ?? false;
  }
}

type Emit = (ctx: NetworkOnHost, sink: HostSink) => void;

/**
 * The incremental desired-state engine the controller holds in memory. Pure and
 * synchronous: no I/O, no timers. Output depends only on the current topology, never on the
 * order or history of changes (the property tests compare it with computeHost).
 *
 * Nodes (OVN incremental-processing style):
 * - the TopologyIndex (input);
 * - one Share per (network, host present in it): the network's part of the host's state,
 *   cached with what it asks of the host (forwarding, router, BGP announcements);
 * - per host, the host-wide resources (sysctls, BGP speaker), re-evaluated only when a
 *   share's asks, the host, or the speaker set change;
 * - per host, the state: the union of its shares and host-wide resources, a Map updated in
 *   place with the deltas. The diff of a host is built from the previous values of the
 *   keys written during the apply (diffAt), so it costs what changed.
 *
 * Change handlers: an instance created, deleted or moved emits only the resources it
 * contributes (`local` on its host, `remote`, and on joining or leaving a host also
 * `remoteHost`, on every other present host: models/model.ts) — *handled*. What cannot be
 * done that way marks (network, host) shares dirty — *recomputed* once at the end of the
 * apply with computeShare: the instance's own share when its host joins or leaves the
 * network, networks and blocks on their present hosts, routers on the present hosts of
 * their networks, a host whose underlay or uplink changed with what refers to it. A dirty
 * host is also reconciled: shares of networks no longer present go, new ones are computed,
 * and filters (which depend on what else is present) are refreshed. `stats()` counts both
 * paths per change type.
 *
 * Memory: resources that several hosts hold alike are interned (share.ts), so a remote
 * instance's FDB and neighbour entries are one object on all its network's hosts.
 */
export class DesiredStateEngine {
  private readonly ix: TopologyIndex;
  private readonly nodes = new Map<string, HostNode>();
  private readonly interner = new Interner();
  private pass: Pass | null = null;
  /** The remote hosts' parts, shared by the shares computed in one phase (index unchanged). */
  private remote: RemoteParts | null = null;
  /** The per-instance deltas of the change being processed, by share. */
  private readonly pending = new Map<
    Share,
    { node: HostNode; hostId: string; out: Resource[]; in: Resource[] }
  >();
  private counters = newCounters();
  private readonly policy: PolicyLayer;
  /** The netset every host with egress or a floating IP holds (null: to be computed). */
  private netset: Resource | null = null;
  /** Hosts holding the netset. */
  private readonly netsetHosts = new Set<string>();

  constructor(topology: Topology) {
    this.ix = TopologyIndex.from(topology);
    this.policy = new PolicyLayer(this.ix, (hostId, key, r) => {
      const node = this.nodes.get(hostId);
      if (!node) return;
      this.pass?.visited.add(hostId);
      this.write(node, key, r);
    });
    this.remote = new RemoteParts(this.interner, true);
    for (const id of this.ix.hosts.keys()) {
      this.reconcile(id, NO_NETWORKS);
      this.refreshHostWide(id);
    }
    this.remote.finish();
    this.remote = null;
    this.policy.init();
    this.policy.flush();
    this.counters = newCounters();
    Object.assign(this.policy.stats, {
      instancesComputed: 0,
      setsComputed: 0,
      membershipChanges: 0,
    });
  }

  /**
   * The current desired state of a host (empty for unknown hosts). Live: the engine updates
   * it in place, so it is valid until the next `apply`; copy it to keep it.
   */
  stateOf(hostId: string): DesiredState {
    return this.nodes.get(hostId)?.state ?? EMPTY_STATE;
  }

  /** Ids of hosts with a (possibly empty) state. */
  hostIds(): IterableIterator<string> {
    return this.nodes.keys();
  }

  /** A snapshot of the current topology. */
  topology(): Topology {
    return this.ix.toTopology();
  }

  /** Handled / recomputed counters per change type, resource operations, shares, interning. */
  stats(): EngineStats {
    const c = this.counters;
    const changes = Object.fromEntries(
      Object.entries(c.changes).map(([k, v]) => [k, { ...v }]),
    ) as EngineStats['changes'];
    let shares = 0;
    for (const n of this.nodes.values()) shares += n.shares.size;
    const p = this.policy.size();
    return {
      ...c,
      changes,
      shares,
      internedKeys: this.interner.size,
      policy: { ...this.policy.stats, sets: p.sets, selectedInstances: p.instances },
    };
  }

  /** Applies one change or a batch (each dirty share recomputed once, at the end). */
  apply(changes: Change | readonly Change[]): EngineUpdate {
    const list: readonly Change[] = Array.isArray(changes) ? changes : [changes as Change];
    const pass = new Pass();
    this.pass = pass;
    try {
      const reflectorsBefore = new Set(this.ix.reflectors);
      let bgpDirty = false;
      for (const c of list) {
        pass.recomputing = false;
        bgpDirty = this.mutate(c, pass) || bgpDirty;
        this.counters.changes[c.type][pass.recomputing ? 'recomputed' : 'handled']++;
      }
      this.widenForBgp(pass, reflectorsBefore, bgpDirty);
      if (pass.netsetChanged) {
        this.netset = null;
        for (const h of this.netsetHosts) pass.hostWide.add(h);
      }
      if (pass.dirty.size > 0) {
        this.remote = new RemoteParts(this.interner, false);
        for (const [h, nets] of pass.dirty) this.reconcile(h, nets);
        this.remote = null;
      }
      for (const h of pass.hostWide) this.refreshHostWide(h);
      this.policy.flush();

      const hosts = new Map<string, HostUpdate>();
      for (const [h, before] of pass.before) {
        const node = this.nodes.get(h)!;
        const d = diffAt(before, node.state);
        const exists = this.ix.hosts.has(h);
        if (!isEmptyDiff(d)) hosts.set(h, { state: exists ? node.state : EMPTY_STATE, diff: d });
      }
      const visited = new Set([...pass.visited, ...pass.dirty.keys(), ...pass.hostWide]);
      for (const h of visited) if (!this.ix.hosts.has(h)) this.nodes.delete(h);
      return { hosts, recomputed: visited.size };
    } finally {
      this.pass = null;
      this.remote = null;
    }
  }

  /**
   * Applies one change to the index, emitting the deltas it can handle and marking dirty the
   * shares it cannot. Returns true when BGP peerings may have changed for reasons other than
   * a host's bgp presence (a speaker's address/ASN or the reflector set).
   */
  private mutate(c: Change, pass: Pass): boolean {
    const ix = this.ix;
    switch (c.type) {
      case 'instance.upsert':
      case 'instance.move':
      case 'instance.delete': {
        const old = ix.instances.get(c.type === 'instance.upsert' ? c.instance.id : c.id);
        let next: Instance | null = null;
        if (c.type === 'instance.upsert')
          // Changes logged before instances had labels carry none.
          next = c.instance.labels ? c.instance : { ...c.instance, labels: {} };
        else if (c.type === 'instance.move') next = old ? { ...old, hostId: c.hostId } : null;
        if (old || next) this.policy.instanceChanged(old ?? null, old?.id ?? next!.id);
        if (old && next && samePlacement(old, next)) {
          // Only policy depends on the labels: keep the new object, touch no network share.
          if (!jsonEquals(old.labels, next.labels)) ix.setInstance(next);
          return false;
        }
        // A change is a removal then an addition (an update re-sends what differs: the
        // previous values are kept per key, so remove + add of one port is an `update`).
        if (old) {
          ix.deleteInstance(old.id);
          this.instanceOut(old, pass);
          const f = next ? undefined : ix.floatingOf(old.id);
          if (f) this.setFloating(f.id, { ...f, instanceId: null }, pass);
        }
        if (next) {
          const joined = !ix.hasInstancesOn(next.networkId, next.hostId);
          ix.setInstance(next);
          this.instanceIn(next, joined, pass);
          // Its floating IP follows it: the network it counts for is the instance's own.
          const f = ix.floatingOf(next.id);
          if (f && ix.floatingNetwork(f.id) !== next.networkId) this.setFloating(f.id, f, pass);
        }
        this.flushDeltas();
        return false;
      }
      case 'network.upsert':
      case 'network.delete': {
        const id = c.type === 'network.upsert' ? c.network.id : c.id;
        const old = ix.networks.get(id);
        if (c.type === 'network.upsert' && old && jsonEquals(old, c.network)) return false;
        // Its shares change on every present host; there, the networks present through it
        // (router peers) may come or go, and the peers' filters name its CIDR.
        const hosts = ix.presentHosts(id);
        this.policy.reachChanged(id);
        this.policy.networkInstances(id);
        if (c.type === 'network.upsert') ix.setNetwork(c.network);
        else ix.deleteNetwork(id);
        this.policy.reachChanged(id);
        if (!old || c.type === 'network.delete' || old.cidr !== c.network.cidr) {
          pass.netsetChanged = true;
        }
        for (const h of hosts) pass.markDirty(h, id);
        if (!old || c.type === 'network.delete') {
          for (const h of ix.instanceHostIds(id)) this.presenceChanged(h, id, pass);
        }
        return false;
      }
      case 'router.upsert':
      case 'router.delete': {
        const id = c.type === 'router.upsert' ? c.router.id : c.id;
        const old = ix.routers.get(id);
        if (c.type === 'router.upsert' && old && jsonEquals(old, c.router)) return false;
        const nets = new Set(old?.networkIds ?? []);
        const hosts = new Set<string>();
        for (const n of nets) ix.presentHosts(n, hosts);
        for (const n of nets) this.policy.reachChanged(n);
        if (c.type === 'router.upsert') {
          ix.setRouter(c.router);
          for (const n of c.router.networkIds) nets.add(n);
        } else ix.deleteRouter(id);
        for (const n of nets) this.policy.reachChanged(n);
        for (const n of nets) ix.presentHosts(n, hosts);
        // Gateway MAC, gateway address and presence of every attached network.
        for (const h of hosts) for (const n of nets) pass.markDirty(h, n);
        return false;
      }
      case 'block.upsert':
      case 'block.delete': {
        const cidr = c.type === 'block.upsert' ? c.block.cidr : c.cidr;
        const old = ix.blocks.get(cidr);
        if (c.type === 'block.upsert' && old && jsonEquals(old, c.block)) return false;
        // A block matters only on hosts with instances of its network: their gateways and
        // ports, and everyone's routes (or BGP announcements) toward it.
        const touch = (b: HostBlock) => {
          if (!ix.hasInstancesOn(b.networkId, b.hostId)) return;
          for (const h of ix.presentHosts(b.networkId)) pass.markDirty(h, b.networkId);
        };
        if (old) touch(old);
        if (c.type === 'block.upsert') ix.setBlock(c.block);
        else ix.deleteBlock(cidr);
        if (c.type === 'block.upsert') touch(c.block);
        return false;
      }
      case 'policy.upsert':
      case 'policy.delete': {
        const id = c.type === 'policy.upsert' ? c.policy.id : c.id;
        const old = ix.policies.get(id);
        const next = c.type === 'policy.upsert' ? c.policy : undefined;
        if (old && next && jsonEquals(old, next)) return false;
        this.policy.policyChanged(old, next);
        if (next) ix.policies.set(id, next);
        else ix.policies.delete(id);
        return false;
      }
      case 'floatingip.upsert':
      case 'floatingip.delete': {
        const id = c.type === 'floatingip.upsert' ? c.floatingIp.id : c.id;
        const old = ix.floatingIps.get(id);
        const next = c.type === 'floatingip.upsert' ? c.floatingIp : undefined;
        if (old && next && jsonEquals(old, next)) return false;
        this.setFloating(id, next, pass);
        return false;
      }
      case 'host.upsert':
      case 'host.delete': {
        const id = c.type === 'host.upsert' ? c.host.id : c.id;
        const old = ix.hosts.get(id);
        const next = c.type === 'host.upsert' ? c.host : undefined;
        if (old && next && jsonEquals(old, next)) return false;
        pass.hostWide.add(id);
        if (!old || !next) this.policy.hostChanged(id);
        if (!old || !next || old.underlayIp !== next.underlayIp || old.uplink !== next.uplink) {
          // Its whole state (VTEP/tunnel local address, uplink names), and what other hosts
          // hold toward it (FDB, flood list, routes). Name, ASN and labels only matter to BGP.
          for (const n of this.nodes.get(id)?.shares.keys() ?? []) pass.markDirty(id, n);
          for (const n of ix.localNetworks(id)) {
            for (const h of ix.presentHosts(n)) pass.markDirty(h, n);
          }
          if (!pass.dirty.has(id)) pass.dirty.set(id, new Set());
        }
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

  /**
   * The presence of `networkId` on a host changes (its first instance arrives, its last one
   * leaves, or the network comes or goes): the network's share there and those of its router
   * peers, which are present through it, are recomputed. Invariant: a cached share that is
   * not dirty has been present on its host all along the apply, so the present hosts a
   * later change looks up include every share it must reach.
   */
  private presenceChanged(hostId: string, networkId: string, pass: Pass): void {
    pass.markDirty(hostId, networkId);
    for (const p of this.ix.peersIncludingMissing(networkId)) pass.markDirty(hostId, p);
  }

  /**
   * Binds, rebinds, unbinds or removes a floating IP: the shares of its old and new
   * instance are recomputed, and where the network's first floating IP arrives or its last
   * one goes (its gateway is served or not: models/model.ts), the network's shares on all
   * its present hosts.
   */
  private setFloating(id: string, next: FloatingIp | undefined, pass: Pass): void {
    const ix = this.ix;
    const nets = new Map<string, boolean>();
    const note = (net: string | undefined) => {
      if (net !== undefined && !nets.has(net)) nets.set(net, ix.hasFloating(net));
    };
    for (const f of [ix.floatingIps.get(id), next]) {
      const inst = f?.instanceId == null ? undefined : ix.instances.get(f.instanceId);
      if (inst) pass.markDirty(inst.hostId, inst.networkId);
      note(inst?.networkId);
    }
    // The network it counted for when bound (its instance may since have moved or gone).
    note(ix.floatingNetwork(id));
    if (next) ix.setFloating(next);
    else ix.deleteFloating(id);
    for (const [n, had] of nets) {
      if (ix.hasFloating(n) === had) continue;
      for (const h of ix.presentHosts(n)) pass.markDirty(h, n);
    }
  }

  /** An instance left (already removed from the index). */
  private instanceOut(old: Instance, pass: Pass): void {
    const network = this.ix.networks.get(old.networkId);
    const owner = this.ix.hosts.get(old.hostId);
    if (!network || !owner) return; // it contributed nothing
    const plan = MODELS[network.model];
    const left = !this.ix.hasInstancesOn(network.id, owner.id);
    if (left)
      pass.markDirty(owner.id, network.id); // presence: its share and the peers'
    // With a floating IP the share's asks change too (the host's netset).
    else if (this.ix.floatingOf(old.id)) pass.markDirty(owner.id, network.id);
    else this.delta(owner, network, (ctx, sink) => emitLocal(plan, ctx, old, sink), false);
    this.remoteDeltas(
      owner,
      network,
      (view, sink) => {
        plan.remote(view, owner, old, sink);
        if (left) plan.remoteHost(view, owner, sink);
      },
      false,
    );
  }

  /** An instance arrived (already in the index); `joined`: first of its network on its host. */
  private instanceIn(next: Instance, joined: boolean, pass: Pass): void {
    const network = this.ix.networks.get(next.networkId);
    const owner = this.ix.hosts.get(next.hostId);
    if (!network || !owner) return; // it contributes nothing
    const plan = MODELS[network.model];
    if (joined) this.presenceChanged(owner.id, network.id, pass);
    else if (this.ix.floatingOf(next.id)) pass.markDirty(owner.id, network.id);
    else this.delta(owner, network, (ctx, sink) => emitLocal(plan, ctx, next, sink), true);
    this.remoteDeltas(
      owner,
      network,
      (view, sink) => {
        if (joined) plan.remoteHost(view, owner, sink);
        plan.remote(view, owner, next, sink);
      },
      true,
    );
  }

  /**
   * Records what `emit` (a remote host's or instance's contribution, which depends only on
   * the network's view: models/model.ts NetworkView) adds to or removes from the shares of
   * `network` on its present hosts other than `owner`. Emitted once per uplink name and the
   * same resource objects handed to every such host, as RemoteParts does for a compute: the
   * interning then finds them at once, and a change allocates one copy instead of one per
   * host.
   */
  private remoteDeltas(
    owner: Host,
    network: Network,
    emit: (view: NetworkView, sink: HostSink) => void,
    add: boolean,
  ): void {
    const pass = this.pass!;
    let byUplink: Map<string, readonly Resource[]> | undefined;
    for (const x of this.ix.presentHosts(network.id)) {
      const host = x === owner.id ? undefined : this.ix.hosts.get(x);
      if (!host || pass.isDirty(host.id, network.id)) continue;
      let rs = byUplink?.get(host.uplink);
      if (!rs) {
        const sink = new ListSink();
        emit(new NetworkOnHost(this.ix, host, network), sink);
        (byUplink ??= new Map()).set(host.uplink, (rs = sink.resources));
      }
      this.deltaOf(host, network, rs, add);
    }
  }

  /**
   * Records what `emit` adds to (or removes from) the share of `network` on `host`; the
   * change's deltas are applied together by `flushDeltas`, so that what an instance change
   * removes and adds again (a move's neighbour entries) costs nothing.
   */
  private delta(host: Host, network: Network, emit: Emit, add: boolean): void {
    const pass = this.pass!;
    if (pass.isDirty(host.id, network.id)) return; // recomputed at the end anyway
    const sink = new ListSink();
    emit(new NetworkOnHost(this.ix, host, network), sink);
    this.deltaOf(host, network, sink.resources, add);
  }

  /** Records resources added to (or removed from) the share of `network` on `host`. */
  private deltaOf(
    host: Host,
    network: Network,
    resources: readonly Resource[],
    add: boolean,
  ): void {
    if (resources.length === 0) return;
    const pass = this.pass!;
    pass.visited.add(host.id);
    const node = this.nodes.get(host.id);
    const share = node?.shares.get(network.id);
    if (!node || !share) return this.fallback(host.id, network.id);
    let d = this.pending.get(share);
    if (!d) this.pending.set(share, (d = { node, hostId: host.id, out: [], in: [] }));
    (add ? d.in : d.out).push(...resources);
  }

  /**
   * Applies the recorded deltas of one change, share by share. A share whose cached content
   * does not hold exactly what is removed, or already holds a key that is added (a collision
   * the model's first-wins must decide), is recomputed instead.
   */
  private flushDeltas(): void {
    for (const [share, d] of this.pending) {
      if (this.pass!.isDirty(d.hostId, share.networkId)) continue;
      const out = new Map<string, Resource>();
      const into = new Map<string, Resource>();
      let ok = !(d.out.length > 0 && share.collided);
      for (const r of d.out) {
        const cur = share.resources.get(r.key);
        ok &&= !!cur && resourceEquals(cur, r) && !out.has(r.key);
        out.set(r.key, r);
      }
      for (const r of d.in) {
        ok &&= (!share.resources.has(r.key) || out.has(r.key)) && !into.has(r.key);
        into.set(r.key, r);
      }
      if (!ok) {
        this.fallback(d.hostId, share.networkId);
        continue;
      }
      for (const k of out.keys()) if (!into.has(k)) this.shareDelete(d.node, share, k);
      for (const [k, r] of into) {
        const cur = share.resources.get(k);
        if (!cur || !resourceEquals(cur, r)) this.shareSet(d.node, share, r);
      }
    }
    this.pending.clear();
  }

  private fallback(hostId: string, networkId: string): void {
    this.counters.fallbacks++;
    this.pass!.markDirty(hostId, networkId);
  }

  /**
   * Brings a host's shares in line with the networks present on it: removes the absent,
   * computes the new and the `dirty`, refreshes the others' filters.
   */
  private reconcile(hostId: string, dirty: ReadonlySet<string>): void {
    const host = this.ix.hosts.get(hostId);
    let node = this.nodes.get(hostId);
    if (!node) {
      if (!host) return;
      this.nodes.set(hostId, (node = new HostNode(hostId)));
    }
    const present = host ? this.ix.presentNetworks(hostId) : [];
    const presentSet = new Set(present);
    let asksChanged = false;
    for (const share of node.shares.values()) {
      if (presentSet.has(share.networkId)) continue;
      this.removeShare(node, share);
      asksChanged = true;
    }
    for (const nid of present) {
      let share = node.shares.get(nid);
      if (!share) {
        node.shares.set(nid, (share = new Share(nid)));
        this.recomputeShare(node, host!, share, presentSet);
        asksChanged = true;
      } else if (dirty.has(nid)) {
        asksChanged = this.recomputeShare(node, host!, share, presentSet) || asksChanged;
      } else {
        this.refreshFilter(node, share, presentSet);
      }
    }
    if (asksChanged) this.pass?.hostWide.add(hostId);
  }

  /** Recomputes a share and applies the difference; true when its host-wide asks changed. */
  private recomputeShare(
    node: HostNode,
    host: Host,
    share: Share,
    presentSet: ReadonlySet<string>,
  ): boolean {
    this.counters.sharesComputed++;
    const network = this.ix.networks.get(share.networkId)!;
    let c: ShareAsks;
    if (share.resources.size === 0) {
      // A new share: computed in place, its resources interned and added to the state.
      c = computeShare(this.ix, host, network, presentSet, share.resources, this.remote);
      if (c.split && this.pass === null) this.addFresh(node, share, c.split.own, c.split.parts);
      else {
        for (const [key, r] of share.resources) {
          const v = this.interner.intern(r);
          if (v !== r) share.resources.set(key, v);
          this.stateAdd(node, share, key, v);
        }
      }
    } else {
      const next = new Map<string, Resource>();
      c = computeShare(this.ix, host, network, presentSet, next, this.remote);
      for (const key of share.resources.keys()) {
        if (!next.has(key)) this.shareDelete(node, share, key);
      }
      for (const r of next.values()) {
        const cur = share.resources.get(r.key);
        if (!cur || !resourceEquals(cur, r)) this.shareSet(node, share, r);
      }
    }
    const changed =
      share.forwarding !== c.forwarding ||
      share.routed !== c.routed ||
      share.netset !== c.netset ||
      !sameAnnouncements(share.announced, c.announced);
    share.forwarding = c.forwarding;
    share.routed = c.routed;
    share.netset = c.netset;
    share.announced = c.announced;
    share.collided = c.collided;
    return changed;
  }

  /**
   * Full compute: a new share's resources (`own` and pinned remote `parts`, which hold no key
   * twice) are interned and added to the host's state. Nothing was written before, so the
   * state's size says whether another share already holds a key (the NBMA tunnel device, GRE
   * neighbours), which the duplicate tracking then resolves.
   */
  private addFresh(
    node: HostNode,
    share: Share,
    own: readonly Resource[],
    parts: readonly RemotePart[],
  ): void {
    const state = node.state;
    let n = state.size;
    for (const r of own) {
      const v = this.interner.intern(r);
      if (v !== r) share.resources.set(r.key, v);
      if (state.set(r.key, v).size === n) this.stateSet(node, share, r.key, v, undefined);
      else n++;
    }
    for (const part of parts) {
      this.interner.retain(part);
      for (const r of part.resources) {
        if (state.set(r.key, r).size === n) this.stateSet(node, share, r.key, r, undefined);
        else n++;
      }
    }
    this.counters.resourceOps += share.resources.size;
  }

  /** Adds a key a share now holds (as `v`) to the host's state. */
  private stateAdd(node: HostNode, share: Share, key: string, v: Resource): void {
    if (node.state.has(key)) return this.stateSet(node, share, key, v, undefined);
    if (this.pass) this.remember(this.pass, node, key, undefined);
    node.state.set(key, v);
    this.counters.resourceOps++;
  }

  /** The filter names the peers present on the host: refreshed when presence may change. */
  private refreshFilter(node: HostNode, share: Share, presentSet: ReadonlySet<string>): void {
    const network = this.ix.networks.get(share.networkId)!;
    const host = this.ix.hosts.get(node.id)!;
    const bridge = bridgeName(network.id);
    const want = shareFilter(this.ix, host, network, bridge, share.resources, presentSet);
    const key = `filter:${bridge}`;
    const cur = share.resources.get(key);
    if (want) {
      if (!cur || !resourceEquals(cur, want)) this.shareSet(node, share, want);
    } else if (cur) this.shareDelete(node, share, key);
  }

  private removeShare(node: HostNode, share: Share): void {
    this.counters.sharesRemoved++;
    for (const key of share.resources.keys()) this.shareDelete(node, share, key);
    node.shares.delete(share.networkId);
  }

  /** Sets a resource of a share (interned) and the host state's value for its key. */
  private shareSet(node: HostNode, share: Share, r: Resource): void {
    const key = r.key;
    const old = share.resources.get(key);
    const v = this.interner.intern(r);
    share.resources.set(key, v);
    if (old) this.interner.release(old);
    this.stateSet(node, share, key, v, old);
  }

  /** The host state's value for a key a share now holds as `v` (it held `old` before). */
  private stateSet(
    node: HostNode,
    share: Share,
    key: string,
    v: Resource,
    old: Resource | undefined,
  ): void {
    const dups = node.dups?.get(key);
    if (dups) {
      dups.set(share.networkId, v);
      return this.write(node, key, winner(dups));
    }
    if (old === undefined && node.state.has(key)) {
      // Another share holds this key too: from now on both are tracked.
      for (const other of node.shares.values()) {
        if (other === share) continue;
        const theirs = other.resources.get(key);
        if (!theirs) continue;
        const d = new Map([
          [other.networkId, theirs],
          [share.networkId, v],
        ]);
        (node.dups ??= new Map()).set(key, d);
        return this.write(node, key, winner(d));
      }
    }
    this.write(node, key, v);
  }

  private shareDelete(node: HostNode, share: Share, key: string): void {
    const old = share.resources.get(key);
    if (!old) return;
    share.resources.delete(key);
    this.interner.release(old);
    const dups = node.dups?.get(key);
    if (dups) {
      dups.delete(share.networkId);
      if (dups.size === 1) node.dups!.delete(key);
      return this.write(node, key, winner(dups));
    }
    this.write(node, key, undefined);
  }

  /** Writes a host's state, remembering the key's value before this apply. */
  private write(node: HostNode, key: string, r: Resource | undefined): void {
    const cur = node.state.get(key);
    if (cur === r) return;
    if (this.pass) this.remember(this.pass, node, key, cur);
    if (r) node.state.set(key, r);
    else node.state.delete(key);
    this.counters.resourceOps++;
  }

  /** Records a key's value before this apply (the first time it is written). */
  private remember(pass: Pass, node: HostNode, key: string, cur: Resource | undefined): void {
    let before = pass.before.get(node.id);
    if (!before) pass.before.set(node.id, (before = new Map<string, Resource | undefined>()));
    if (!before.has(key)) before.set(key, cur);
  }

  /** Sysctls from the shares' asks, and the BGP speaker (computeHost's host-wide tail). */
  private refreshHostWide(hostId: string): void {
    const host = this.ix.hosts.get(hostId);
    let node = this.nodes.get(hostId);
    if (!node) {
      if (!host) return;
      this.nodes.set(hostId, (node = new HostNode(hostId)));
    }
    this.counters.hostWideComputed++;
    let forwarding = false;
    let routed = false;
    let netset = false;
    for (const s of node.shares.values()) {
      forwarding ||= s.forwarding;
      routed ||= s.routed;
      netset ||= s.netset;
    }
    this.write(node, IP_FORWARD.key, host && (forwarding || routed) ? IP_FORWARD : undefined);
    this.write(node, RP_FILTER.key, host && routed ? RP_FILTER : undefined);
    if (host && netset) {
      this.netset ??= netsetResource(this.ix);
      this.write(node, NETSET_KEY, this.netset);
      this.netsetHosts.add(hostId);
    } else {
      this.write(node, NETSET_KEY, undefined);
      this.netsetHosts.delete(hostId);
    }
    let bgp: Resource | undefined;
    if (host && isSpeaker(this.ix, hostId)) {
      const announced = new Map<string, string>();
      for (const nid of [...node.shares.keys()].sort()) {
        for (const [cidr, bridge] of node.shares.get(nid)!.announced) announced.set(cidr, bridge);
      }
      bgp = bgpSpeaker(this.ix, host, announced);
      const cur = node.state.get(BGP_KEY);
      if (cur && resourceEquals(cur, bgp)) return;
    }
    this.write(node, BGP_KEY, bgp);
  }

  /** Adds the speakers whose peer lists change when the set of speakers changes. */
  private widenForBgp(pass: Pass, reflectorsBefore: ReadonlySet<string>, bgpDirty: boolean): void {
    const ix = this.ix;
    // BGP presence can only change on hosts whose presence may have changed.
    const toggled = ix.refreshBgp(new Set([...pass.dirty.keys(), ...pass.hostWide]));
    for (const h of toggled) pass.hostWide.add(h);
    if (!bgpDirty && toggled.length === 0) return;
    const bgpBefore = new Set(ix.bgpHosts);
    for (const h of toggled) {
      if (bgpBefore.has(h)) bgpBefore.delete(h);
      else bgpBefore.add(h);
    }
    if (!bgpDirty && ix.reflectors.size > 0) {
      // Reflector mode, reflector set unchanged: only reflectors peer with a joining or
      // leaving speaker (which is itself re-evaluated).
      for (const r of ix.reflectors) pass.hostWide.add(r);
      return;
    }
    for (const h of effectiveSpeakers(bgpBefore, reflectorsBefore)) pass.hostWide.add(h);
    for (const h of effectiveSpeakers(ix.bgpHosts, ix.reflectors)) pass.hostWide.add(h);
  }
}

/** The resource of the smallest network id among a key's emitters. */
function winner(d: ReadonlyMap<string, Resource>): Resource {
  let best: string | null = null;
  for (const k of d.keys()) if (best === null || k < best) best = k;
  return d.get(best!)!;
}

function sameAnnouncements(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>) {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

function newCounters() {
  const kinds: Change['type'][] = [
    'host.upsert',
    'host.delete',
    'network.upsert',
    'network.delete',
    'instance.upsert',
    'instance.delete',
    'instance.move',
    'block.upsert',
    'block.delete',
    'router.upsert',
    'router.delete',
    'policy.upsert',
    'policy.delete',
    'floatingip.upsert',
    'floatingip.delete',
  ];
  return {
    changes: Object.fromEntries(kinds.map((k) => [k, { handled: 0, recomputed: 0 }])) as {
      [T in Change['type']]: ChangeCounters;
    },
    resourceOps: 0,
    sharesComputed: 0,
    sharesRemoved: 0,
    hostWideComputed: 0,
    fallbacks: 0,
  };
}
