import {
  encapsulationOverhead,
  type Host,
  type Instance,
  type Network,
} from '../../../model/src/index.js';
import { bridgeName } from '../names.js';
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

/**
 * What a model sees when it computes one network's share of one host's state. Only called
 * for hosts in present(N): hosts with instances of N, or with instances of a network that
 * shares a router with N.
 */
export class NetworkOnHost {
  readonly bridge: string;
  /** Instance MTU: underlay MTU minus the encapsulation overhead. */
  readonly mtu: number;
  /** Existing routers the network is attached to, sorted by id. */
  readonly routers: readonly string[];
  /** The distributed router's gateway MAC when attached to a router, else null. */
  readonly routerMac: string | null;
  private localCache: Instance[] | null = null;

  constructor(
    readonly ix: TopologyIndex,
    readonly host: Host,
    readonly network: Network,
  ) {
    this.bridge = bridgeName(network.id);
    this.mtu = network.mtu - encapsulationOverhead(network);
    this.routers = ix.routersOf(network.id);
    this.routerMac = gatewayMacOf(this.routers);
  }

  /** True when this host has instances of the network (not only router presence). */
  get hasLocal(): boolean {
    return this.ix.hasInstancesOn(this.network.id, this.host.id);
  }

  /** True when the network's gateway is served on this host (attached to a router). */
  get routed(): boolean {
    return this.routers.length > 0;
  }

  /** Local instances, sorted by id. */
  get local(): readonly Instance[] {
    this.localCache ??= this.instancesOn(this.host.id);
    return this.localCache;
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

  /** Instances of the network on a host, sorted by id. */
  instancesOn(hostId: string): Instance[] {
    return [...this.ix.instancesOn(this.network.id, hostId)].sort((a, b) => cmp(a.id, b.id));
  }

  blocksOf(hostId: string): string[] {
    return this.ix.blocksOf(this.network.id, hostId);
  }
}

/**
 * One networking model. Adding a model is one file implementing this plus one line in the
 * registry (models/registry.ts).
 *
 * `contribute` computes a network's whole share of a host. The three per-part methods say
 * what ONE instance or ONE remote host adds to a share, so that the incremental engine can
 * turn an instance change into resource deltas instead of recomputing shares. They must be
 * exactly the parts `contribute` emits (each model's `contribute` is written with them, and
 * the property tests compare the engine with the full compute):
 *
 *   contribute(ctx) = base(ctx)                                  (devices, gateways, filter)
 *                   ∪ ⋃ local(ctx, i)          for i ∈ ctx.local
 *                   ∪ ⋃ remoteHost(ctx, g)     for g ∈ ctx.remoteHosts()
 *                   ∪ ⋃ remote(ctx, g, i)      for g ∈ ctx.remoteHosts(), i ∈ instances on g
 *
 * where base(ctx) depends on which hosts have instances of the network (presence), never on
 * the individual instances.
 */
export interface NetworkModelPlan {
  /**
   * Emits the network's resources on `ctx.host`: devices, ports of local instances,
   * gateway addresses, and the transport state toward other hosts. Must be a pure function
   * of `ctx` (it is re-run on every recompute).
   */
  contribute(ctx: NetworkOnHost, sink: HostSink): void;
  /** What local instance `i` adds to its own host's share: its port (fabric: FDB, neighbour). */
  local(ctx: NetworkOnHost, i: Instance, sink: HostSink): void;
  /**
   * What the existing host `owner` (≠ ctx.host, with instances of the network) adds to
   * ctx.host's share, apart from its instances: flood-list entry, routes to its blocks.
   */
  remoteHost(ctx: NetworkOnHost, owner: Host, sink: HostSink): void;
  /** What instance `i` on the existing host `owner` (≠ ctx.host) adds to ctx.host's share. */
  remote(ctx: NetworkOnHost, owner: Host, i: Instance, sink: HostSink): void;
}
