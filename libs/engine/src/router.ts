/**
 * Distributed routers (OVN-style). A router attaches networks; every host with instances of
 * an attached network A also holds the L2/L3 presence of every other attached network B —
 * B's bridge with B's gateway, and B's transport state (VXLAN device + FDB/neighbour entries
 * for B's remote instances, routes or a BGP speaker for B's blocks) — so traffic from A is
 * routed on the sending host and delivered over B's own transport. The gateway IP lives on
 * the host side of every such host, with the same gateway MAC everywhere, derived from the
 * router id. `present(N)` in topology-index.ts is the set of hosts this produces.
 *
 * What cannot be routed, by construction:
 * - A `bridge`-model network is a per-host island: a router gives its gateway on every host
 *   with router presence, but only instances on the *same* host are reachable through it
 *   (there is no transport toward other hosts' bridges).
 * - A block-based network reached only through a router gets no bridge and no gateway on a
 *   host without its instances (nothing to serve); it is reached through its routes/BGP.
 * - A network attached to several routers uses the gateway MAC of the router with the
 *   smallest id; its peers are the union over all its routers.
 * - VLAN/fabric-over-VLAN networks put the same gateway IP and MAC on every host's bridge on
 *   one physical segment: ARP replies for the gateway come from several hosts (same answer)
 *   and the physical switch sees that MAC move between ports. Local delivery is unaffected
 *   (a bridge never forwards frames for its own MAC), but operators should know.
 */
import { routerMac } from './names.js';

/** Gateway MAC for a network attached to `routerIds` (sorted, existing), or null. */
export function gatewayMacOf(routerIds: readonly string[]): string | null {
  return routerIds.length ? routerMac(routerIds[0]) : null;
}
