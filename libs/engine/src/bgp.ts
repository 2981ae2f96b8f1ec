/**
 * The host's BGP speaker (`routed` + `routing: bgp`, Calico style, BIRD 2).
 *
 * Speakers are the hosts with bgp presence (instances of a bgp network, or router presence
 * of one), plus every host labelled `ROUTE_REFLECTOR_LABEL: 'true'` as soon as there is at
 * least one such host. One speaker per host, whatever the number of bgp networks: it
 * announces the host's blocks of all of them.
 * - No reflectors: full iBGP mesh between all speakers.
 * - With reflectors: reflectors peer with each other (plain iBGP) and with every other
 *   speaker as `rr client`; other speakers peer only with the reflectors.
 * ASN = host.asn ?? DEFAULT_ASN; router id = underlay IP.
 */
import { DEFAULT_ASN, type Host } from '../../model/src/index.js';
import { resource, type BgpPeer, type Resource } from './resources.js';
import type { TopologyIndex } from './topology-index.js';

export function isSpeaker(ix: TopologyIndex, hostId: string): boolean {
  return ix.bgpHosts.size > 0 && (ix.bgpHosts.has(hostId) || ix.reflectors.has(hostId));
}

export function bgpSpeaker(
  ix: TopologyIndex,
  host: Host,
  announce: ReadonlyMap<string, string>,
): Resource {
  const rrMode = ix.reflectors.size > 0;
  const isReflector = ix.reflectors.has(host.id);
  const peers: BgpPeer[] = [];
  for (const s of ix.speakers()) {
    if (s.id === host.id) continue;
    const peerIsReflector = ix.reflectors.has(s.id);
    if (rrMode && !isReflector && !peerIsReflector) continue;
    peers.push(peerOf(s, rrMode && isReflector && !peerIsReflector));
  }
  return resource('bgp', {
    asn: host.asn ?? DEFAULT_ASN,
    routerId: host.underlayIp,
    routeReflector: isReflector,
    announce: [...announce.keys()].sort(),
    interfaces: [...new Set(announce.values())].filter((d) => d !== host.uplink).sort(),
    ...(hasUplink(announce, host.uplink) ? { uplink: host.uplink } : {}),
    peers,
  });
}

function hasUplink(announce: ReadonlyMap<string, string>, uplink: string): boolean {
  for (const dev of announce.values()) if (dev === uplink) return true;
  return false;
}

/**
 * A speaker as a peer, one object per (host, rrClient) shared by every speaker's peer list
 * (a full mesh of n speakers would otherwise hold n² peer objects). Host objects are
 * immutable: a changed host is a new object, hence a new entry.
 */
const peers = new WeakMap<Host, { plain?: BgpPeer; rrClient?: BgpPeer }>();
function peerOf(s: Host, rrClient: boolean): BgpPeer {
  let p = peers.get(s);
  if (!p) peers.set(s, (p = {}));
  const slot = rrClient ? 'rrClient' : 'plain';
  return (p[slot] ??= { address: s.underlayIp, asn: s.asn ?? DEFAULT_ASN, rrClient });
}
