import type { Policy } from './policy.js';

/**
 * The domain objects of Lattice as plain, immutable data. The controller loads them from
 * PostgreSQL; the desired-state engine computes from them; nothing here knows about either.
 */

export const NETWORK_MODELS = ['bridge', 'vlan', 'routed', 'overlay', 'fabric'] as const;
export type NetworkModel = (typeof NETWORK_MODELS)[number];

export const ENCAPSULATIONS = ['vxlan', 'ipip', 'gre'] as const;
export type Encapsulation = (typeof ENCAPSULATIONS)[number];

export const ROUTINGS = ['static', 'bgp'] as const;
export type Routing = (typeof ROUTINGS)[number];

export const TRANSPORTS = ['vxlan', 'vlan'] as const;
export type Transport = (typeof TRANSPORTS)[number];

/** Host label that makes a host a BGP route reflector for `routed`/`bgp` networks. */
export const ROUTE_REFLECTOR_LABEL = 'lattice.io/route-reflector';
/** ASN used by BGP speakers of hosts that declare none (private, iBGP full mesh). */
export const DEFAULT_ASN = 64512;

export interface Host {
  readonly id: string;
  readonly name: string;
  readonly underlayIp: string;
  readonly uplink: string;
  readonly asn: number | null;
  readonly labels: Readonly<Record<string, string>>;
}

export interface Network {
  readonly id: string;
  readonly name: string;
  readonly model: NetworkModel;
  /** IPv4 CIDR in canonical form, e.g. `10.10.0.0/24`. */
  readonly cidr: string;
  /** Gateway address of the subnet (for block-based models, of the whole CIDR). */
  readonly gateway: string;
  /** Underlay MTU; instance MTU is this minus the encapsulation overhead. */
  readonly mtu: number;
  /** `vlan`, and `fabric` with `transport: vlan`. */
  readonly vlanId: number | null;
  /** `overlay` with `encapsulation: vxlan`, and `fabric` with `transport: vxlan`. */
  readonly vni: number | null;
  /** `overlay` only. */
  readonly encapsulation: Encapsulation | null;
  /** `routed` only. */
  readonly routing: Routing | null;
  /** Block-based models only (`routed`; `overlay` with ipip/gre). */
  readonly blockPrefixLen: number | null;
  /** `fabric` only. */
  readonly transport: Transport | null;
  /**
   * Egress: traffic of the network's instances to destinations outside every Lattice
   * network leaves through the instance's host, source-translated to the host's underlay
   * address. Absent: false (changes logged before egress existed carry none).
   */
  readonly natOutgoing?: boolean;
}

export interface Instance {
  readonly id: string;
  readonly name: string;
  readonly networkId: string;
  readonly hostId: string;
  readonly ip: string;
  /** Lower-case, colon-separated. */
  readonly mac: string;
  /**
   * Kubernetes-style labels (selected by network policy). They place nothing: a change of
   * labels alone changes no host's resources.
   */
  readonly labels: Readonly<Record<string, string>>;
}

/** True when two instances differ at most in their labels (same network, host, IP, MAC). */
export function samePlacement(a: Instance, b: Instance): boolean {
  return (
    a.id === b.id &&
    a.name === b.name &&
    a.networkId === b.networkId &&
    a.hostId === b.hostId &&
    a.ip === b.ip &&
    a.mac === b.mac
  );
}

/** A host's share of a block-based network. */
export interface HostBlock {
  readonly networkId: string;
  readonly hostId: string;
  readonly cidr: string;
}

export interface Router {
  readonly id: string;
  readonly name: string;
  readonly networkIds: readonly string[];
}

/**
 * An external address of a floating-IP pool. Bound to an instance, it is that instance's
 * address outside: 1:1 DNAT inbound and SNAT outbound on the instance's host, which answers
 * for it on the underlay. Unbound, it stays allocated and does nothing.
 */
export interface FloatingIp {
  readonly id: string;
  /** IPv4 address (no prefix length). */
  readonly address: string;
  readonly poolId: string;
  readonly instanceId: string | null;
}

/** Everything the desired-state engine needs, keyed by id. */
export interface Topology {
  readonly hosts: ReadonlyMap<string, Host>;
  readonly networks: ReadonlyMap<string, Network>;
  readonly instances: ReadonlyMap<string, Instance>;
  readonly blocks: readonly HostBlock[];
  readonly routers: ReadonlyMap<string, Router>;
  /** Network policies (absent: none). */
  readonly policies?: ReadonlyMap<string, Policy>;
  /** Floating IPs (absent: none). */
  readonly floatingIps?: ReadonlyMap<string, FloatingIp>;
}

/** True when instance addresses come from per-host blocks rather than one shared subnet. */
export function isBlockBased(n: Pick<Network, 'model' | 'encapsulation'>): boolean {
  return (
    n.model === 'routed' ||
    (n.model === 'overlay' && (n.encapsulation === 'ipip' || n.encapsulation === 'gre'))
  );
}

/** Bytes of encapsulation overhead subtracted from the underlay MTU for instances. */
export function encapsulationOverhead(
  n: Pick<Network, 'model' | 'encapsulation' | 'transport'>,
): number {
  switch (n.model) {
    case 'overlay':
      return n.encapsulation === 'ipip' ? 20 : n.encapsulation === 'gre' ? 24 : 50;
    case 'fabric':
      return n.transport === 'vlan' ? 0 : 50;
    case 'bridge':
    case 'vlan':
    case 'routed':
      return 0;
  }
}
