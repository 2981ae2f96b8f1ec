import { uplinkName, VXLAN_PORT, vxlanName, vethName } from '../names.js';
import { resource, type PortFlags } from '../resources.js';
import type { NetworkModelPlan } from './model.js';
import { FABRIC_INSTANCE_FLAGS, sharedSubnetBase } from './common.js';

/** The transport port (VXLAN device or uplink): no learning/flooding, broadcasts still out. */
const FABRIC_VXLAN_FLAGS: PortFlags = {
  learning: false,
  flood: false,
  mcastFlood: false,
  bcastFlood: true,
  neighSuppress: false,
};
const FABRIC_UPLINK_FLAGS: PortFlags = { ...FABRIC_VXLAN_FLAGS, neighSuppress: true };

/**
 * `fabric` (direct forwarding, DATAPLANE §7): all forwarding information is pushed, nothing
 * is learned or flooded. Every host with presence gets, for EVERY instance of the network
 * (local ones too — with learning and flooding off, two local instances would not find each
 * other otherwise):
 * - a static bridge FDB entry (`master static`) toward the instance's port: its veth when
 *   local, the transport port when remote (for VXLAN also the VTEP entry `dst <underlay>`);
 * - a permanent neighbour entry IP → MAC from which ARP is answered locally: on the VXLAN
 *   device (`proxy`) for transport `vxlan`, on the bridge (used by `neigh_suppress` on the
 *   uplink `<uplink>.<vid>`) for transport `vlan`.
 * No flood list. Bridge ports have learning/flood/mcast_flood off, instance ports also
 * bcast_flood off. Transport null means the default, `vxlan`.
 */
export const fabricModel: NetworkModelPlan = {
  contribute(ctx, sink) {
    const { network, host, bridge } = ctx;
    const overVlan = network.transport === 'vlan';
    if (overVlan ? network.vlanId === null : network.vni === null) return; // fail closed
    sharedSubnetBase(ctx, sink, FABRIC_INSTANCE_FLAGS);
    let transportDev: string;
    let neighDev: string;
    if (overVlan) {
      const vlanId = network.vlanId!;
      transportDev = uplinkName(host.uplink, vlanId);
      neighDev = bridge;
      sink.add(
        resource('uplink', {
          name: transportDev,
          parent: host.uplink,
          vlanId,
          master: bridge,
          flags: FABRIC_UPLINK_FLAGS,
        }),
      );
    } else {
      const vni = network.vni!;
      transportDev = vxlanName(vni);
      neighDev = transportDev;
      sink.add(
        resource('vxlan', {
          name: transportDev,
          vni,
          local: host.underlayIp,
          dstport: VXLAN_PORT,
          dev: host.uplink,
          learning: false,
          proxy: true,
          master: bridge,
          mtu: ctx.mtu,
          flags: FABRIC_VXLAN_FLAGS,
        }),
      );
    }
    for (const i of ctx.local) {
      sink.add(resource('fdb', { dev: vethName(i.id), mac: i.mac, dst: null, master: true }));
      sink.add(resource('neigh', { dev: neighDev, ip: i.ip, lladdr: i.mac }));
    }
    for (const g of ctx.remoteHosts()) {
      const dst = overVlan ? null : g.underlayIp;
      for (const i of ctx.instancesOn(g.id)) {
        sink.add(resource('fdb', { dev: transportDev, mac: i.mac, dst, master: true }));
        sink.add(resource('neigh', { dev: neighDev, ip: i.ip, lladdr: i.mac }));
      }
    }
  },
};
