/**
 * Isolation between networks. Instances of networks that share no router must not reach
 * each other, even on one host where `ip_forward=1` would happily route between bridges.
 *
 * Each network with a bridge on the host gets a `filter` resource (see FilterSpec for the
 * nftables rendering). Rules match on the *ingress bridge* (`iifname`), so:
 * - traffic bridged inside one network is accepted explicitly: with
 *   `bridge-nf-call-iptables=1` bridged frames traverse the inet FORWARD hook too, with the
 *   bridge as both input and output interface (DATAPLANE trap);
 * - routed traffic from a network is accepted only toward its own CIDR (block-based models:
 *   other hosts' blocks) and toward networks sharing a router with it that are present on
 *   this host; everything else forwarded from its bridge is dropped. Traffic arriving from
 *   the underlay is not filtered here: it was filtered on the sending host.
 * Matching on interfaces rather than addresses keeps isolated L2 networks that reuse one
 * subnet apart, and needs no fleet-wide list of Lattice subnets (so creating a network does
 * not touch every host).
 */
import { isBlockBased, type Host, type Network } from '../../model/src/index.js';
import { resource, type Resource } from './resources.js';
import type { TopologyIndex } from './topology-index.js';

export function filterFor(
  ix: TopologyIndex,
  host: Host,
  network: Network,
  bridge: string,
  presentOnHost: ReadonlySet<string>,
): Resource {
  const accept = new Set<string>();
  if (isBlockBased(network)) accept.add(network.cidr);
  for (const p of ix.peers(network.id)) {
    if (presentOnHost.has(p)) accept.add(ix.networks.get(p)!.cidr);
  }
  return resource('filter', {
    network: network.id,
    bridge,
    accept: [...accept].sort(),
    snat: network.natOutgoing === true ? host.underlayIp : null,
  });
}
