import { uplinkName, VXLAN_PORT, vxlanName, vethName } from '../names.js';
import { resource, type PortFlags } from '../resources.js';
import type { Host, Instance } from '../../../model/src/index.js';
import type { HostSink, NetworkModelPlan, NetworkOnHost, NetworkView } from './model.js';
import { FABRIC_INSTANCE_FLAGS, nothing, sharedSubnetBase, sharedSubnetPort } from './common.js';

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
  base(ctx, sink) {
    if (failsClosed(ctx)) return;
    const { network, host, bridge } = ctx;
    sharedSubnetBase(ctx, sink);
    if (network.transport === 'vlan') {
      const vlanId = network.vlanId!;
      sink.add(
        resource('uplink', {
          name: uplinkName(host.uplink, vlanId),
          parent: host.uplink,
          vlanId,
          master: bridge,
          flags: FABRIC_UPLINK_FLAGS,
        }),
      );
    } else {
      const vni = network.vni!;
      sink.add(
        resource('vxlan', {
          name: vxlanName(vni),
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
  },
  local(ctx, i, sink) {
    if (failsClosed(ctx)) return;
    sharedSubnetPort(ctx, i, sink, FABRIC_INSTANCE_FLAGS);
    localEntries(ctx, i, sink);
  },
  remoteHost: nothing,
  remote(ctx, owner, i, sink) {
    if (!failsClosed(ctx)) remoteEntries(ctx, owner, i, sink);
  },
};

/** Fail closed: no VLAN id / VNI allocated for the transport. */
function failsClosed(ctx: NetworkView): boolean {
  const n = ctx.network;
  return n.transport === 'vlan' ? n.vlanId === null : n.vni === null;
}

/** The transport port (uplink or VXLAN device) and the device carrying the neighbours. */
function devices(ctx: NetworkView): { transportDev: string; neighDev: string } {
  const n = ctx.network;
  if (n.transport === 'vlan') {
    return { transportDev: uplinkName(ctx.uplink, n.vlanId!), neighDev: ctx.bridge };
  }
  const vx = vxlanName(n.vni!);
  return { transportDev: vx, neighDev: vx };
}

function localEntries(ctx: NetworkOnHost, i: Instance, sink: HostSink): void {
  sink.add(resource('fdb', { dev: vethName(i.id), mac: i.mac, dst: null, master: true }));
  sink.add(resource('neigh', { dev: devices(ctx).neighDev, ip: i.ip, lladdr: i.mac }));
}

function remoteEntries(ctx: NetworkView, g: Host, i: Instance, sink: HostSink): void {
  const { transportDev, neighDev } = devices(ctx);
  const dst = ctx.network.transport === 'vlan' ? null : g.underlayIp;
  sink.add(resource('fdb', { dev: transportDev, mac: i.mac, dst, master: true }));
  sink.add(resource('neigh', { dev: neighDev, ip: i.ip, lladdr: i.mac }));
}
