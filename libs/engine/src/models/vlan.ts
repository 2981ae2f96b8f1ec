import type { Instance } from '../../../model/src/index.js';
import { uplinkName } from '../names.js';
import { resource } from '../resources.js';
import type { HostSink, NetworkModelPlan, NetworkView } from './model.js';
import { nothing, sharedSubnetBase, sharedSubnetPort } from './common.js';

/**
 * `vlan`: one bridge per VLAN per host with the uplink sub-interface `<uplink>.<vid>` as a
 * port (DATAPLANE §2); the physical underlay forwards between hosts. Only on hosts with
 * presence (instances, or router presence): other hosts do not join the segment.
 *
 * Attached to a router, every host answers for the same gateway IP and MAC, so a host
 * cannot resolve a remote instance by ARP: the instance's reply is addressed to the
 * gateway MAC and is taken by the instance's own host. Remote instances therefore get a
 * permanent neighbour entry on the bridge (IP → MAC), as the overlay model does; frames
 * toward them are then switched over the VLAN like any other (verified with real packets
 * in the lab, test/lab).
 */
export const vlanModel: NetworkModelPlan = {
  base(ctx, sink) {
    const vlanId = ctx.network.vlanId;
    if (vlanId === null) return; // fail closed: no VLAN allocated
    sharedSubnetBase(ctx, sink);
    sink.add(
      resource('uplink', {
        name: uplinkName(ctx.host.uplink, vlanId),
        parent: ctx.host.uplink,
        vlanId,
        master: ctx.bridge,
        flags: null,
      }),
    );
  },
  local(ctx, i, sink) {
    if (ctx.network.vlanId !== null) sharedSubnetPort(ctx, i, sink, null);
  },
  remoteHost: nothing,
  remote(ctx, _owner, i, sink) {
    if (ctx.network.vlanId !== null && ctx.routed) remoteNeigh(ctx, i, sink);
  },
};

function remoteNeigh(ctx: NetworkView, i: Instance, sink: HostSink): void {
  sink.add(resource('neigh', { dev: ctx.bridge, ip: i.ip, lladdr: i.mac }));
}
