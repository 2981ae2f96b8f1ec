import {
  encapsulationOverhead,
  intToIp,
  parseCidr,
  type Cidr,
  type Host,
  type Instance,
  type Network,
} from '../../../model/src/index.js';
import { emitFloating } from '../egress.js';
import { bridgeName, networkGatewayMac } from '../names.js';
import type { Resource } from '../resources.js';
import { cmp, type TopologyIndex } from '../topology-index.js';
import { gatewayMacOf } from '../router.js';

/** Where a model writes a host's resources and host-wide needs. */
export interface HostSink {
  add(r: Resource): void;
  /** The host must forward IPv4 (`net.ipv4.ip_forward=1`). */
  needForwarding(): void;
  /** Announce a local block over BGP (the block's gateway lives on `bridge`). */
  announce(cidr: string, bridge: string): void;
}

/** A local block of a block-based network, parsed once per share. */
export interface LocalBlock extends Cidr {
  readonly cidr: string;
  /** First usable address: the host's gateway for the block. */
  readonly gateway: string;
}

/**
 * What a model may use to say what a remote host or one of its instances adds to a share
 * (`remoteHost`, `remote`): the network's side of the context, which is the same on every
 * host of the network with the same uplink name. The engine therefore computes a remote
 * host's contribution once per (network, remote host, uplink) and references the same
 * resource objects from every other present host.
 */
export interface NetworkView {
  readonly ix: TopologyIndex;
  readonly network: Network;
  readonly bridge: string;
  /** Instance MTU: underlay MTU minus the encapsulation overhead. */
  readonly mtu: number;
  /** Existing routers the network is attached to, sorted by id. */
  readonly routers: readonly string[];
  /** The distributed router's gateway MAC when attached to a router, else null. */
  readonly routerMac: string | null;
  /**
   * True when the network's gateway is served on its hosts: attached to a router, with
   * egress (`natOutgoing`), or with a floating IP bound to one of its instances.
   */
  readonly routed: boolean;
  /** The uplink of the host whose share is computed (VLAN sub-interfaces are named after it). */
  readonly uplink: string;
  /** Instances of the network on a host, sorted by id. */
  instancesOn(hostId: string): readonly Instance[];
  /** Blocks of the network owned by a host, sorted. */
  blocksOf(hostId: string): readonly string[];
}

/**
 * What a model sees when it computes one network's share of one host's state. Only called
 * for hosts in present(N): hosts with instances of N, or with instances of a network that
 * shares a router with N.
 */
export class NetworkOnHost implements NetworkView {
  readonly bridge: string;
  readonly mtu: number;
  readonly routers: readonly string[];
  readonly routerMac: string | null;
  readonly routed: boolean;
  private localCache: readonly Instance[] | null = null;
  private localBlocksCache: readonly string[] | null = null;
  private localBlockCidrs: readonly LocalBlock[] | null = null;
  private subnetPrefixCache: number | null = null;

  constructor(
    readonly ix: TopologyIndex,
    readonly host: Host,
    readonly network: Network,
  ) {
    this.bridge = bridgeName(network.id);
    this.mtu = network.mtu - encapsulationOverhead(network);
    this.routers = ix.routersOf(network.id);
    this.routed =
      this.routers.length > 0 || network.natOutgoing === true || ix.hasFloating(network.id);
    // One gateway MAC on every host, as for a distributed router (router.ts): several hosts
    // of one L2 segment answer for the gateway, with the same answer.
    this.routerMac =
      gatewayMacOf(this.routers) ?? (this.routed ? networkGatewayMac(network.id) : null);
  }

  /** True when this host has instances of the network (not only router presence). */
  get hasLocal(): boolean {
    return this.ix.hasInstancesOn(this.network.id, this.host.id);
  }

  get uplink(): string {
    return this.host.uplink;
  }

  /** Local instances, sorted by id. */
  get local(): readonly Instance[] {
    this.localCache ??= this.instancesOn(this.host.id);
    return this.localCache;
  }

  /** Blocks of the network owned by this host, sorted. */
  get localBlocks(): readonly string[] {
    this.localBlocksCache ??= this.blocksOf(this.host.id);
    return this.localBlocksCache;
  }

  /** The local blocks parsed, with their gateway (first usable address); malformed ones skipped. */
  get localBlocksParsed(): readonly LocalBlock[] {
    if (!this.localBlockCidrs) {
      const out: LocalBlock[] = [];
      for (const cidr of this.localBlocks) {
        const c = parseCidr(cidr);
        if (c) out.push({ cidr, base: c.base, prefix: c.prefix, gateway: intToIp(c.base + 1) });
      }
      this.localBlockCidrs = out;
    }
    return this.localBlockCidrs;
  }

  /** The prefix length of the network's CIDR (32 when malformed). */
  get subnetPrefix(): number {
    this.subnetPrefixCache ??= parseCidr(this.network.cidr)?.prefix ?? 32;
    return this.subnetPrefixCache;
  }

  /** Other existing hosts with instances of the network, sorted by id. */
  remoteHosts(): Host[] {
    const out: Host[] = [];
    for (const hid of this.ix.instanceHostIds(this.network.id)) {
      if (hid === this.host.id) continue;
      const h = this.ix.hosts.get(hid);
      if (h) out.push(h);
    }
    return out.sort((a, b) => cmp(a.id, b.id));
  }

  instancesOn(hostId: string): readonly Instance[] {
    return this.ix.sortedInstancesOn(this.network.id, hostId);
  }

  blocksOf(hostId: string): readonly string[] {
    return this.ix.blocksOf(this.network.id, hostId);
  }
}

/**
 * One networking model. Adding a model is one file implementing this plus one line in the
 * registry (models/registry.ts).
 *
 * A network's share of a host is composed of four parts, so that the incremental engine can
 * turn an instance change into resource deltas instead of recomputing shares, and compute
 * what a remote host adds once for all the hosts that hold it:
 *
 *   contribute(ctx) = base(ctx)                                  (devices, gateways)
 *                   ∪ ⋃ local(ctx, i)          for i ∈ ctx.local
 *                   ∪ ⋃ remoteHost(ctx, g)     for g ∈ ctx.remoteHosts()
 *                   ∪ ⋃ remote(ctx, g, i)      for g ∈ ctx.remoteHosts(), i ∈ instances on g
 *
 * `contribute` below is that composition, and both the full compute and the engine use it
 * (the engine's per-instance deltas call the parts), so they cannot disagree. Each part must
 * be a pure function of its arguments (it is re-run on every recompute).
 */
export interface NetworkModelPlan {
  /**
   * What the network puts on `ctx.host` apart from its instances and the remote hosts:
   * devices, gateway addresses, BGP announcements, forwarding. Depends on which hosts have
   * instances of the network (presence), never on the individual instances.
   */
  base(ctx: NetworkOnHost, sink: HostSink): void;
  /** What local instance `i` adds to its own host's share: its port (fabric: FDB, neighbour). */
  local(ctx: NetworkOnHost, i: Instance, sink: HostSink): void;
  /**
   * What the existing host `owner` (≠ the share's host, with instances of the network) adds
   * to a share, apart from its instances: flood-list entry, routes to its blocks. Resources
   * only (no needForwarding / announce).
   */
  remoteHost(view: NetworkView, owner: Host, sink: HostSink): void;
  /**
   * What instance `i` on the existing host `owner` (≠ the share's host) adds to a share.
   * Resources only (no needForwarding / announce).
   */
  remote(view: NetworkView, owner: Host, i: Instance, sink: HostSink): void;
}

/**
 * A network's whole share of `ctx.host`: base, local instances, then each remote host (in id
 * order) with its instances. `remotePart`, when given, adds a remote host's part to the sink
 * itself (what `emitRemote` emits for it, computed once for all hosts); otherwise the part is
 * emitted here.
 */
export function contribute(
  plan: NetworkModelPlan,
  ctx: NetworkOnHost,
  sink: HostSink,
  remotePart?: (owner: Host) => void,
): void {
  plan.base(ctx, sink);
  for (const i of ctx.local) emitLocal(plan, ctx, i, sink);
  for (const g of ctx.remoteHosts()) {
    if (remotePart) remotePart(g);
    else emitRemote(plan, ctx, g, sink);
  }
}

/** What local instance `i` adds to its host's share: the model's part and its floating IP. */
export function emitLocal(
  plan: NetworkModelPlan,
  ctx: NetworkOnHost,
  i: Instance,
  sink: HostSink,
): void {
  plan.local(ctx, i, sink);
  emitFloating(ctx, i, (r) => sink.add(r));
}

/** What the remote host `owner` and its instances add to a share of the network of `view`. */
export function emitRemote(
  plan: NetworkModelPlan,
  view: NetworkView,
  owner: Host,
  sink: HostSink,
): void {
  plan.remoteHost(view, owner, sink);
  for (const i of view.instancesOn(owner.id)) plan.remote(view, owner, i, sink);
}
