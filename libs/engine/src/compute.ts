import type { Topology } from '../../model/src/index.js';
import { bgpSpeaker, isSpeaker } from './bgp.js';
import { announceFloating, netsetResource, shareNeedsNetset } from './egress.js';
import { filterFor } from './isolation.js';
import { contribute, NetworkOnHost, type HostSink } from './models/model.js';
import { MODELS } from './models/registry.js';
import { policyResources } from './policy/compile.js';
import { resource, type Resource } from './resources.js';
import { TopologyIndex } from './topology-index.js';

/** A host's desired state: resources by key. Treat as immutable. */
export type DesiredState = ReadonlyMap<string, Resource>;

export const EMPTY_STATE: DesiredState = new Map();

class Sink implements HostSink {
  readonly resources = new Map<string, Resource>();
  forwarding = false;
  readonly announced = new Map<string, string>();

  add(r: Resource): void {
    // Resources shared between networks (the NBMA tunnel device, its GRE neighbours) are
    // emitted identically by each; the first one wins. Networks are visited in id order, so
    // even a (practically impossible) name collision resolves deterministically.
    if (!this.resources.has(r.key)) this.resources.set(r.key, r);
  }
  needForwarding(): void {
    this.forwarding = true;
  }
  announce(cidr: string, bridge: string): void {
    this.announced.set(cidr, bridge);
  }
}

/**
 * The desired state of one host: a pure function of the index's current content. Used by
 * both the full recompute and the incremental engine, so they cannot disagree on semantics.
 */
export function computeHost(ix: TopologyIndex, hostId: string): Map<string, Resource> {
  const host = ix.hosts.get(hostId);
  if (!host) return new Map();
  const sink = new Sink();
  const present = ix.presentNetworks(hostId);
  const presentSet = new Set(present);
  let routerHost = false;
  let netset = false;
  for (const nid of present) {
    const network = ix.networks.get(nid)!;
    const ctx = new NetworkOnHost(ix, host, network);
    contribute(MODELS[network.model], ctx, sink);
    let filter: Resource | null = null;
    if (sink.resources.has(`bridge:${ctx.bridge}`)) {
      filter = filterFor(ix, host, network, ctx.bridge, presentSet);
      sink.add(filter);
    }
    if (ctx.routed) routerHost = true;
    if (shareNeedsNetset(filter, announceFloating(ctx, sink))) netset = true;
  }
  if (netset) sink.add(netsetResource(ix));
  if (sink.forwarding || routerHost) {
    sink.add(resource('sysctl', { name: 'net.ipv4.ip_forward', value: '1' }));
  }
  if (routerHost) {
    // Routing through a distributed router is asymmetric when block-based networks are
    // attached (a reply may arrive on the uplink for a source reached via a local bridge):
    // strict reverse-path filtering would drop it. Loose mode keeps spoofing protection.
    sink.add(resource('sysctl', { name: 'net.ipv4.conf.all.rp_filter', value: '2' }));
  }
  if (isSpeaker(ix, hostId)) sink.add(bgpSpeaker(ix, host, sink.announced));
  for (const r of policyResources(ix, hostId)) sink.add(r);
  return sink.resources;
}

/** Full recompute: the desired state of every host of the topology. */
export function computeAll(topology: Topology): Map<string, DesiredState> {
  const ix = TopologyIndex.from(topology);
  const out = new Map<string, DesiredState>();
  for (const id of ix.hosts.keys()) out.set(id, computeHost(ix, id));
  return out;
}

/** The desired state of one host of a topology (full computation of that host). */
export function computeHostState(topology: Topology, hostId: string): DesiredState {
  return computeHost(TopologyIndex.from(topology), hostId);
}
