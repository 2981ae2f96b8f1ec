/**
 * A way out and a way in: egress NAT per network (`natOutgoing`) and floating IPs.
 *
 * Both are routed on the instance's own host, whatever the network's model: the instance's
 * default route points at its network's gateway on that host (a network with egress or a
 * floating IP has its gateway served like a router-attached one, with one gateway MAC on
 * every host), the host routes toward the destination over its own uplink, and its
 * nftables table translates the source. Nothing crosses the overlay, so isolation between
 * Lattice networks is untouched:
 * - egress is accepted only toward destinations outside every Lattice network (the host's
 *   `netset`, the CIDRs of all networks), source-translated to the host's underlay address
 *   (the filter's `snat`);
 * - a floating IP is an address on the host's uplink (the host answers ARP for it on the
 *   underlay, and announces the move with a gratuitous ARP), translated 1:1 to the
 *   instance's address inbound (DNAT) and from it outbound (SNAT, before the network's
 *   egress). It is part of the instance's local contribution, so it follows the instance
 *   when it moves.
 */
import { parseCidr, type Instance } from '../../model/src/index.js';
import type { NetworkOnHost } from './models/model.js';
import { resource, type Resource, type ResourceOf } from './resources.js';
import type { TopologyIndex } from './topology-index.js';

export const NETSET_KEY = 'netset:internal';

/**
 * The CIDRs of every network, aggregated: sorted by address, a CIDR contained in another
 * is dropped (CIDRs either nest or are disjoint, so comparing with the last kept suffices).
 */
export function internalCidrs(ix: TopologyIndex): string[] {
  const parsed: { cidr: string; base: number; prefix: number }[] = [];
  const seen = new Set<string>();
  for (const n of ix.networks.values()) {
    if (seen.has(n.cidr)) continue;
    seen.add(n.cidr);
    const c = parseCidr(n.cidr);
    if (c) parsed.push({ cidr: n.cidr, base: c.base, prefix: c.prefix });
  }
  parsed.sort((a, b) => a.base - b.base || a.prefix - b.prefix);
  const out: string[] = [];
  let lastEnd = -1;
  for (const c of parsed) {
    const end = c.base + 2 ** (32 - c.prefix) - 1;
    if (c.base <= lastEnd) continue;
    out.push(c.cidr);
    lastEnd = end;
  }
  return out;
}

/** The host-wide set of Lattice CIDRs (the same object may be given to every host). */
export function netsetResource(ix: TopologyIndex): ResourceOf<'netset'> {
  return resource('netset', { name: 'internal', cidrs: internalCidrs(ix) });
}

/** What a local instance's floating IP puts on its host, or nothing. */
export function emitFloating(ctx: NetworkOnHost, i: Instance, add: (r: Resource) => void): void {
  const f = ctx.ix.floatingOf(i.id);
  if (!f) return;
  add(
    resource('fip', {
      address: f.address,
      instance: i.id,
      name: i.name,
      network: ctx.network.id,
      bridge: ctx.bridge,
      ip: i.ip,
      dev: ctx.host.uplink,
    }),
  );
}

/**
 * Announces the floating IPs of the share's local instances (`<address>/32` on the uplink,
 * where the address lives: a host that speaks BGP exports them to its peers, bgp.ts) and
 * says whether there is any.
 */
export function announceFloating(
  ctx: NetworkOnHost,
  sink: { announce(cidr: string, dev: string): void },
): boolean {
  let any = false;
  for (const i of ctx.local) {
    const f = ctx.ix.floatingOf(i.id);
    if (!f) continue;
    sink.announce(`${f.address}/32`, ctx.host.uplink);
    any = true;
  }
  return any;
}

/** True when a share with this filter (and floating IPs or not) needs the host's netset. */
export function shareNeedsNetset(filter: Resource | null, floating: boolean): boolean {
  return floating || (filter?.kind === 'filter' && filter.spec.snat !== null);
}
