/**
 * Kernel object names and derived identifiers.
 *
 * Interface names are at most 15 characters (IFNAMSIZ - 1). Every device Lattice creates is
 * named from a short stable id (VNI, VLAN id, or a hash of an immutable uuid) and starts
 * with the ownership prefix `lt`, so the agent can recognise and garbage-collect its own
 * objects. User-given names never end up in kernel names (they can be long, and renaming
 * them must not churn the data plane).
 */

/** Ownership prefix of every kernel object the agent creates. */
export const OWNER_PREFIX = 'lt';
export const IFNAMSIZ = 15;
/** IANA VXLAN port (DATAPLANE: dstport 4789 carried real packets). */
export const VXLAN_PORT = 4789;

/**
 * cyrb53: a fast, well-mixed 53-bit string hash. Not cryptographic; only needs to spread
 * uuids so that two networks on one host practically never share a name (40 bits for
 * bridges: ~5e-7 chance of any collision among 1,000 networks).
 */
export function hash53(str: string, seed = 0): number {
  mix53(str, seed);
  return 4294967296 * mixed.hi + mixed.lo;
}

/** The halves of the last mix53: hash53 = hi · 2^32 + lo (hi < 2^21, lo < 2^32). */
const mixed = { hi: 0, lo: 0 };

function mix53(str: string, seed: number): void {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < str.length; i++) {
    const ch = str.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  mixed.hi = 2097151 & h2;
  mixed.lo = h1 >>> 0;
}

/**
 * The first `chars` (≤ 13) lower-case hex digits of hash53(str, seed), zero-padded to 14.
 * Built from 24- and 16-bit pieces: small-integer `toString(16)` is several times faster
 * than that of a 53-bit double.
 */
export function shortHash(str: string, chars: number, seed = 0): string {
  mix53(str, seed);
  const { hi, lo } = mixed;
  const hex =
    (hi | 0x1000000).toString(16).slice(1) +
    ((lo >>> 16) | 0x10000).toString(16).slice(1) +
    ((lo & 0xffff) | 0x10000).toString(16).slice(1);
  return hex.slice(0, chars);
}

/**
 * Bridge names are derived for every share and every per-instance delta: memoised, keyed by
 * the network id (bounded: dropped when it grows past a fleet's worth of networks). Veth
 * names are not: computing one is cheaper than a lookup in a table of every instance.
 */
const bridgeNames = new Map<string, string>();

/** The Linux bridge of a network on every host: `ltbr-` + 10 hex = 15 chars. */
export function bridgeName(networkId: string): string {
  let name = bridgeNames.get(networkId);
  if (name === undefined) {
    if (bridgeNames.size >= 1 << 16) bridgeNames.clear();
    bridgeNames.set(networkId, (name = `${OWNER_PREFIX}br-${shortHash(networkId, 10)}`));
  }
  return name;
}

/** The VXLAN device of a network: `ltvx<vni>` (VNI ≤ 16777215 → ≤ 12 chars). */
export function vxlanName(vni: number): string {
  return `${OWNER_PREFIX}vx${vni}`;
}

/** Host end of an instance's veth pair: `ltv` + 12 hex of the instance id = 15 chars. */
export function vethName(instanceId: string): string {
  return `${OWNER_PREFIX}v${shortHash(instanceId, 12)}`;
}

/**
 * VLAN sub-interface of the host uplink: `<uplink>.<vid>` (DATAPLANE: the lab pre-wires
 * interfaces with exactly this name). When that would exceed IFNAMSIZ (uplink names longer
 * than 10 chars) the agent creates an owned sub-interface `lt<6 hex>.<vid>` instead.
 */
export function uplinkName(uplink: string, vlanId: number): string {
  const name = `${uplink}.${vlanId}`;
  return name.length <= IFNAMSIZ ? name : `${OWNER_PREFIX}${shortHash(uplink, 6)}.${vlanId}`;
}

/**
 * The L3 tunnel device of an encapsulation, shared by all networks of that encapsulation
 * on a host: one NBMA device (`local <underlay>`, no `remote`) per mode, because the kernel
 * refuses two ipip devices with the same local/remote pair.
 */
export function tunnelName(mode: 'ipip' | 'gre'): string {
  return mode === 'ipip' ? `${OWNER_PREFIX}ipip` : `${OWNER_PREFIX}gre`;
}

function macFromHash(str: string, seed: number): string {
  const hex = shortHash(str, 10, seed);
  // 0x0e: locally administered (bit 1 set), unicast (bit 0 clear); distinct from the
  // 02:… range the controller uses for generated instance MACs.
  return `0e:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}:${hex.slice(6, 8)}:${hex.slice(8, 10)}`;
}

/** Gateway MAC of a distributed router: identical on every host. */
export function routerMac(routerId: string): string {
  return macFromHash(routerId, 0x52);
}

/**
 * Bridge MAC of a block-based network that is not attached to a router. Pinned so that the
 * gateway MAC instances cache never changes when ports come and go (a Linux bridge otherwise
 * takes the lowest port MAC).
 */
export function networkGatewayMac(networkId: string): string {
  return macFromHash(networkId, 0x4e);
}
