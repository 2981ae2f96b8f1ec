import type { Host } from '../../../model/src/index.js';
import { resource } from '../resources.js';
import type { HostSink, NetworkModelPlan, NetworkView } from './model.js';
import { blockBase, blockPort, nothing } from './common.js';

/**
 * `routed` (direct routing): each host owns blocks of the network CIDR; the block gateway
 * (first usable address) lives on the local bridge and the host forwards (DATAPLANE §3–5).
 * - `static` (Flannel host-gw): a route to every other instance host's blocks via that
 *   host's underlay IP: `ip route replace <block> via <underlay>`.
 * - `bgp` (Calico): no static routes; the host runs a BGP speaker (see bgp.ts) announcing
 *   its local blocks. A host whose only link to the network is a router still runs a
 *   speaker, which imports the network's blocks.
 * Only blocks of hosts that have instances of the network are routed to.
 */
export const routedModel: NetworkModelPlan = {
  base(ctx, sink) {
    sink.needForwarding();
    const bgp = ctx.network.routing === 'bgp';
    if (ctx.hasLocal) {
      for (const b of blockBase(ctx, sink)) if (bgp) sink.announce(b, ctx.bridge);
    }
  },
  local: blockPort,
  remoteHost(ctx, owner, sink) {
    if (ctx.network.routing !== 'bgp') staticRoutes(ctx, owner, sink);
  },
  remote: nothing,
};

function staticRoutes(ctx: NetworkView, g: Host, sink: HostSink): void {
  for (const dst of ctx.blocksOf(g.id)) {
    sink.add(resource('route', { dst, via: g.underlayIp, dev: null, onlink: false }));
  }
}
