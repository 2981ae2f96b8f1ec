/**
 * The resources of a host's desired state: `{ kind, key, spec }`, a discriminated union over
 * `kind`. Specs are plain JSON (they travel over the agent WebSocket) and carry everything
 * the agent needs to render the iproute2 / bridge / nft / BIRD commands without lookups.
 *
 * Keys are stable, human-readable and unique per host; they embed the kernel identity of the
 * object (device name, destination, MAC) so that a key never names two kernel objects.
 */

import type { PolicyPort } from '../../model/src/index.js';

/** Bridge port flags (`bridge link set dev X learning off flood off …`). */
export interface PortFlags {
  readonly learning: boolean;
  readonly flood: boolean;
  readonly mcastFlood: boolean;
  readonly bcastFlood: boolean;
  readonly neighSuppress: boolean;
}

/** `ip link add <name> type bridge`; `ip link set <name> [address <mac>] mtu <mtu> up`. */
export interface BridgeSpec {
  readonly name: string;
  /** Network id, for tracing only. */
  readonly network: string;
  readonly mtu: number;
  /** Pinned bridge MAC (the gateway MAC when the bridge carries a gateway), or null. */
  readonly mac: string | null;
}

/**
 * VLAN sub-interface of the host uplink, enslaved to the network bridge:
 * use `<name>` if it exists (lab: pre-wired veth), else
 * `ip link add link <parent> name <name> type vlan id <vlanId>`; then
 * `ip link set <name> master <master> up` and the port flags when not null.
 */
export interface UplinkSpec {
  readonly name: string;
  readonly parent: string;
  readonly vlanId: number;
  readonly master: string;
  readonly flags: PortFlags | null;
}

/**
 * `ip link add <name> type vxlan id <vni> local <local> dstport <dstport> dev <dev>
 * nolearning [proxy]`; `ip link set <name> master <master> mtu <mtu> up`; port flags.
 */
export interface VxlanSpec {
  readonly name: string;
  readonly vni: number;
  readonly local: string;
  readonly dstport: number;
  readonly dev: string;
  /** Always false (`nolearning`): remote MACs come from the pushed FDB. */
  readonly learning: boolean;
  /** `proxy`: the device answers ARP from its neighbour table (fabric). */
  readonly proxy: boolean;
  readonly master: string;
  readonly mtu: number;
  readonly flags: PortFlags | null;
}

/** `ip link add <name> type <mode> local <local> dev <dev>` (NBMA: no remote); `up`. */
export interface TunnelSpec {
  readonly name: string;
  readonly mode: 'ipip' | 'gre';
  readonly local: string;
  readonly dev: string;
}

/**
 * An instance's attachment. Lab rendering: `ip link add <veth> type veth peer name eth0
 * netns <instance ns>`; `ip link set <veth> master <bridge> mtu <mtu> up`; port flags; inside
 * the instance: `address <mac>`, `mtu <mtu>`, `addr add <address>`, default route via
 * `<gateway>` when not null.
 */
export interface PortSpec {
  readonly instance: string;
  /** Instance name, for humans only. */
  readonly name: string;
  readonly network: string;
  readonly bridge: string;
  readonly veth: string;
  readonly mac: string;
  /** `ip/prefixLen`. */
  readonly address: string;
  readonly gateway: string | null;
  readonly mtu: number;
  readonly flags: PortFlags | null;
}

/** `ip addr replace <address> dev <dev>` (`address` is `ip/prefixLen`). */
export interface AddressSpec {
  readonly dev: string;
  readonly address: string;
}

/** `ip route replace <dst> via <via> [dev <dev>] [onlink]`. */
export interface RouteSpec {
  readonly dst: string;
  readonly via: string;
  readonly dev: string | null;
  readonly onlink: boolean;
}

/**
 * One forwarding entry for `mac` on port/device `dev`:
 * - `dst` not null: VXLAN entry `bridge fdb replace <mac> dev <dev> dst <dst>`; when `mac` is
 *   all zeros it is a flood-list entry and is rendered with `bridge fdb append` (several
 *   all-zero entries coexist, one per remote VTEP).
 * - `master`: static entry in the bridge's own table pointing at port `dev`:
 *   `bridge fdb replace <mac> dev <dev> master static`.
 * Both may be set (fabric over VXLAN renders both commands).
 */
export interface FdbSpec {
  readonly dev: string;
  readonly mac: string;
  readonly dst: string | null;
  readonly master: boolean;
}

/** `ip neigh replace <ip> lladdr <lladdr> dev <dev> nud permanent`. */
export interface NeighSpec {
  readonly dev: string;
  readonly ip: string;
  /** A MAC, or for NBMA GRE the remote underlay IPv4 address. */
  readonly lladdr: string;
}

export interface BgpPeer {
  readonly address: string;
  readonly asn: number;
  /** Render `rr client;` (this speaker reflects routes to that peer). */
  readonly rrClient: boolean;
}

/**
 * The host's BIRD 2 speaker. `local <routerId> as <asn>`; one `protocol bgp` per peer with
 * `neighbor <address> as <asn>; direct;` (+ `rr client;`); export exactly the `announce`
 * prefixes (e.g. `protocol direct` on `interfaces` filtered by `net ~ [announce]`); kernel
 * protocol `import none; export where source = RTS_BGP;`.
 */
export interface BgpSpec {
  readonly asn: number;
  readonly routerId: string;
  readonly routeReflector: boolean;
  /** Local blocks, sorted. */
  readonly announce: readonly string[];
  /** Bridges carrying the local block gateways, sorted. */
  readonly interfaces: readonly string[];
  /**
   * The host's uplink when floating IPs held here are announced (their `/32` sits on it,
   * egress.ts); absent otherwise. Not a device the speaker needs: the uplink always exists.
   */
  readonly uplink?: string;
  /** Sorted by address. */
  readonly peers: readonly BgpPeer[];
}

/** `sysctl -w <name>=<value>` (inside the host namespace: `ip netns exec`). */
export interface SysctlSpec {
  readonly name: string;
  readonly value: string;
}

/**
 * One network's rules in the host's nftables chain
 * `table inet lattice { chain forward { type filter hook forward priority 0; policy accept; … } }`.
 * Render, for each filter resource in key order:
 * ```
 * iifname "<bridge>" oifname "<bridge>" accept        # bridged (br_netfilter) and hairpin
 * iifname "<bridge>" ip daddr { <accept…> } accept    # only when accept is not empty
 * iifname "<bridge>" drop                             # anything else forwarded from it
 * ```
 * Forwarding is filtered where it enters from an instance's bridge, so every host guards its
 * own instances' egress; no fleet-wide list of Lattice subnets is needed.
 */
export interface FilterSpec {
  readonly network: string;
  readonly bridge: string;
  /**
   * Destination CIDRs this network may be routed to, sorted: its own CIDR for block-based
   * networks (other hosts' blocks) and the CIDRs of networks sharing a router with it.
   */
  readonly accept: readonly string[];
  /**
   * Egress (the network's `natOutgoing`): the address its traffic to destinations outside
   * every Lattice network is source-translated to (the host's underlay address), or null.
   * Rendered before the drop, and in the NAT postrouting chain:
   * ```
   * iifname "<bridge>" ip daddr != @internal accept                  # forward
   * iifname "<bridge>" ip daddr != @internal snat ip to <snat>       # postrouting
   * ```
   * `@internal` is the host's `netset` (every Lattice network's CIDR).
   */
  readonly snat: string | null;
}

/**
 * The CIDRs of every Lattice network, aggregated (none contains another), as the nftables
 * interval set `set internal { type ipv4_addr; flags interval; … }`: what egress and
 * floating IPs never translate or let out. Held by hosts with egress or a floating IP.
 */
export interface NetSetSpec {
  readonly name: 'internal';
  readonly cidrs: readonly string[];
}

/**
 * A floating IP on the host of its instance (1:1 NAT):
 * - `ip addr replace <address>/32 dev <dev> label <dev>:lt`, so that the host answers ARP
 *   for it on the underlay (the label marks the address as the agent's), then a gratuitous
 *   ARP (`arping -U -c 1 -I <dev> <address>`) so that neighbours learn where it lives now;
 * - in `table inet lattice`:
 * ```
 * ip daddr <address> dnat ip to <ip>                                           # prerouting
 * iifname "<bridge>" ip saddr <ip> ip daddr != @internal snat ip to <address>  # postrouting, first
 * iifname "<bridge>" ip saddr <ip> ip daddr != @internal accept                # forward, before the drop
 * ```
 * Inbound traffic is translated before routing, so it is forwarded to the instance (and
 * checked by its ingress policy); replies are translated back by conntrack.
 */
export interface FloatingSpec {
  readonly address: string;
  readonly instance: string;
  /** Instance name, for humans only. */
  readonly name: string;
  readonly network: string;
  readonly bridge: string;
  /** The instance's address (no prefix length). */
  readonly ip: string;
  /** The host's uplink, which carries the address. */
  readonly dev: string;
}

/** Where a policy rule's traffic may come from (ingress) or go to (egress). */
export type PolicyPeerSpec =
  /** The addresses of the `pmember` resources of set `set` (an nftables named set). */
  | { readonly set: string }
  /** `cidr` minus the `except` CIDRs. */
  | { readonly cidr: string; readonly except: readonly string[] };

/** One allow rule of one policy, as one instance's chain holds it. */
export interface PolicyRuleSpec {
  /** Policy name and id, and the rule's index in that policy's list for this direction. */
  readonly policy: string;
  readonly policyId: string;
  readonly rule: number;
  /** null: any address. */
  readonly peers: readonly PolicyPeerSpec[] | null;
  /** null: any protocol and port. */
  readonly ports: readonly PolicyPort[] | null;
}

/**
 * The network policy of one local instance: chains `in_<veth>` / `eg_<veth>` in
 * `table inet lattice`, reached from the forward chain (before the isolation filters) by
 * ```
 * iifname "<bridge>" ip saddr <address> jump eg_<veth>   # when egress is not null
 * oifname "<bridge>" ip daddr <address> jump in_<veth>   # when ingress is not null
 * ```
 * Each chain starts with `ct state established,related return` (stateful: replies pass),
 * has one `return` rule per allowed (peers × ports) of each rule, in the listed order, and
 * ends with `drop`. A `return` continues in the forward chain (the other direction's check,
 * then isolation), so a flow passes when the source's egress and the destination's ingress
 * both allow it.
 */
export interface PolicySpec {
  readonly instance: string;
  /** Instance name, for humans only. */
  readonly name: string;
  readonly network: string;
  readonly bridge: string;
  readonly veth: string;
  /** The instance's IPv4 address (no prefix length). */
  readonly address: string;
  /** null: not isolated for ingress (no policy selects it for that direction). */
  readonly ingress: readonly PolicyRuleSpec[] | null;
  readonly egress: readonly PolicyRuleSpec[] | null;
}

/**
 * One address of a policy peer set: `set <set> { type ipv4_addr; flags interval; }` holds
 * every member's address. A set is defined on a host when a `policy` resource there names
 * it, with exactly its members (possibly none).
 */
export interface PolicyMemberSpec {
  readonly set: string;
  readonly address: string;
}

export interface SpecByKind {
  sysctl: SysctlSpec;
  bridge: BridgeSpec;
  tunnel: TunnelSpec;
  uplink: UplinkSpec;
  vxlan: VxlanSpec;
  port: PortSpec;
  address: AddressSpec;
  fdb: FdbSpec;
  neigh: NeighSpec;
  route: RouteSpec;
  bgp: BgpSpec;
  filter: FilterSpec;
  policy: PolicySpec;
  pmember: PolicyMemberSpec;
  netset: NetSetSpec;
  fip: FloatingSpec;
}

export type ResourceKind = keyof SpecByKind;

export interface ResourceOf<K extends ResourceKind> {
  readonly kind: K;
  readonly key: `${K}:${string}`;
  readonly spec: SpecByKind[K];
}

/** A desired-state resource: a discriminated union over `kind`. */
export type Resource = { [K in ResourceKind]: ResourceOf<K> }[ResourceKind];

/**
 * The single dependency/order table. A resource only references resources of a strictly
 * lower rank, so upserts sorted by ascending rank and deletes by descending rank never
 * reference a missing object.
 */
export const KIND_ORDER: { readonly [K in ResourceKind]: number } = {
  sysctl: 0,
  bridge: 0,
  tunnel: 0,
  uplink: 1, // master bridge
  vxlan: 1, // master bridge
  port: 2, // master bridge
  address: 2, // on bridge
  fdb: 3, // on vxlan / uplink / port
  neigh: 3, // on bridge / vxlan / tunnel
  route: 3, // over tunnel
  bgp: 4, // announces bridges' blocks
  filter: 4, // names a bridge
  policy: 4, // names a bridge and sets
  pmember: 4, // element of a set (nftables: loaded with the table)
  netset: 4, // nftables set (loaded with the table)
  fip: 4, // address on the uplink; NAT rules name a bridge
};

export const RESOURCE_KINDS = Object.keys(KIND_ORDER) as ResourceKind[];

const ZERO_MAC = '00:00:00:00:00:00';

const KEYS: { readonly [K in ResourceKind]: (s: SpecByKind[K]) => string } = {
  sysctl: (s) => s.name,
  bridge: (s) => s.name,
  tunnel: (s) => s.name,
  uplink: (s) => s.name,
  vxlan: (s) => s.name,
  port: (s) => s.veth,
  address: (s) => `${s.dev}:${s.address}`,
  fdb: (s) => (s.mac === ZERO_MAC ? `${s.dev}:${s.mac}:${s.dst ?? ''}` : `${s.dev}:${s.mac}`),
  neigh: (s) => `${s.dev}:${s.ip}`,
  route: (s) => s.dst,
  bgp: () => 'speaker',
  filter: (s) => s.bridge,
  policy: (s) => s.veth,
  pmember: (s) => `${s.set}:${s.address}`,
  netset: (s) => s.name,
  fip: (s) => s.address,
};

/** Builds a resource with its canonical key. */
export function resource<K extends ResourceKind>(kind: K, spec: SpecByKind[K]): ResourceOf<K> {
  return { kind, key: `${kind}:${KEYS[kind](spec)}`, spec };
}

/** The kernel device a resource creates (bridge, uplink, vxlan, tunnel, veth), or null. */
export function deviceOf(r: Resource): string | null {
  switch (r.kind) {
    case 'bridge':
    case 'uplink':
    case 'vxlan':
    case 'tunnel':
      return r.spec.name;
    case 'port':
      return r.spec.veth;
    case 'sysctl':
    case 'address':
    case 'fdb':
    case 'neigh':
    case 'route':
    case 'bgp':
    case 'filter':
    case 'policy':
    case 'pmember':
    case 'netset':
    case 'fip':
      return null;
  }
}

/** Devices a resource needs to exist before it can be applied. */
export function devicesReferenced(r: Resource): readonly string[] {
  switch (r.kind) {
    case 'uplink':
    case 'vxlan':
      return [r.spec.master];
    case 'port':
      return [r.spec.bridge];
    case 'address':
    case 'fdb':
    case 'neigh':
      return [r.spec.dev];
    case 'route':
      return r.spec.dev ? [r.spec.dev] : [];
    case 'bgp':
      return r.spec.interfaces;
    case 'filter':
    case 'policy':
    case 'fip':
      return [r.spec.bridge];
    case 'netset':
    case 'pmember':
    case 'sysctl':
    case 'bridge':
    case 'tunnel':
      return [];
  }
}

/**
 * Fields whose change cannot be applied in place: the agent deletes and recreates the object
 * (`op: 'replace'`), and the diff re-sends every resource that lives on that device.
 */
const REPLACE_FIELDS: { readonly [K in ResourceKind]: readonly (keyof SpecByKind[K])[] } = {
  sysctl: [],
  bridge: [],
  tunnel: ['mode', 'local', 'dev'],
  uplink: ['parent', 'vlanId'],
  vxlan: ['vni', 'local', 'dstport', 'dev', 'learning', 'proxy'],
  port: [],
  address: [],
  fdb: [],
  neigh: [],
  route: [],
  bgp: [],
  filter: [],
  policy: [],
  pmember: [],
  netset: [],
  fip: [],
};

export function needsReplace(a: Resource, b: Resource): boolean {
  if (a.kind !== b.kind) return true;
  const fields = REPLACE_FIELDS[a.kind] as readonly string[];
  const sa = a.spec as unknown as Record<string, unknown>;
  const sb = b.spec as unknown as Record<string, unknown>;
  return fields.some((f) => sa[f] !== sb[f]);
}
