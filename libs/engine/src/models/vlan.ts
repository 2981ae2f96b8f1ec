import { uplinkName } from '../names.js';
import { resource } from '../resources.js';
import type { NetworkModelPlan } from './model.js';
import { sharedSubnetBase } from './common.js';

/**
 * `vlan`: one bridge per VLAN per host with the uplink sub-interface `<uplink>.<vid>` as a
 * port (DATAPLANE §2); the physical underlay forwards between hosts. Only on hosts with
 * presence (instances, or router presence): other hosts do not join the segment.
 */
export const vlanModel: NetworkModelPlan = {
  contribute(ctx, sink) {
    const vlanId = ctx.network.vlanId;
    if (vlanId === null) return; // fail closed: no VLAN allocated
    sharedSubnetBase(ctx, sink, null);
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
};
