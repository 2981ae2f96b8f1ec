import { tunnelName, VXLAN_PORT, vxlanName } from '../names.js';
import { resource } from '../resources.js';
import type { Host, Instance } from '../../../model/src/index.js';
import type { HostSink, NetworkModelPlan, NetworkOnHost, NetworkView } from './model.js';
import { blockBase, blockPort, sharedSubnetBase, sharedSubnetPort } from './common.js';

const ZERO_MAC = '00:00:00:00:00:00';

/**
 * `overlay` (tunneling).
 * - `vxlan`: an L2 overlay (DATAPLANE §6). A VXLAN device `ltvx<vni>` (`nolearning`,
 *   dstport 4789, `dev <uplink>`, created in the host namespace) enslaved to the network
 *   bridge; a flood-list entry toward every other host with instances of the network (never
 *   toward hosts without); per remote instance a static FDB entry (MAC → remote VTEP) and a
 *   permanent neighbour entry (IP → MAC) on the bridge, which is the L3 device the host uses
 *   when it routes into the network through a router. Instance MTU = underlay − 50.
 * - `ipip`/`gre`: L3 tunnels carrying per-host blocks: one shared NBMA tunnel device per
 *   mode on the host and `ip route replace <block> via <remote underlay> dev <tunnel> onlink`
 *   per remote block (Calico IPIP style). For GRE, whose NBMA devices take the outer
 *   destination from the neighbour entry of the next hop, also
 *   `ip neigh replace <remote underlay> lladdr <remote underlay> dev ltgre` (not verifiable
 *   on the lab kernel, which has neither ipip nor gre). Instance MTU = underlay − 20 / − 24.
 */
export const overlayModel: NetworkModelPlan = {
  base(ctx, sink) {
    switch (ctx.network.encapsulation) {
      case 'vxlan':
        return vxlanOverlay(ctx, sink);
      case 'ipip':
      case 'gre':
        return l3Tunnel(ctx, sink, ctx.network.encapsulation);
      case null:
        return; // fail closed: the controller always sets an encapsulation
    }
  },
  local(ctx, i, sink) {
    switch (ctx.network.encapsulation) {
      case 'vxlan':
        if (ctx.network.vni !== null) sharedSubnetPort(ctx, i, sink, null);
        return;
      case 'ipip':
      case 'gre':
        return blockPort(ctx, i, sink);
      case null:
        return;
    }
  },
  remoteHost(ctx, owner, sink) {
    switch (ctx.network.encapsulation) {
      case 'vxlan':
        if (ctx.network.vni !== null) floodEntry(ctx.network.vni, owner, sink);
        return;
      case 'ipip':
      case 'gre':
        return tunnelRoutes(ctx, owner, sink, ctx.network.encapsulation);
      case null:
        return;
    }
  },
  remote(ctx, owner, i, sink) {
    if (ctx.network.encapsulation === 'vxlan' && ctx.network.vni !== null) {
      remoteEntries(ctx, ctx.network.vni, owner, i, sink);
    }
  },
};

function vxlanOverlay(ctx: NetworkOnHost, sink: HostSink): void {
  const { network, host, bridge } = ctx;
  if (network.vni === null) return; // fail closed: no VNI allocated
  sharedSubnetBase(ctx, sink);
  const vx = vxlanName(network.vni);
  sink.add(
    resource('vxlan', {
      name: vx,
      vni: network.vni,
      local: host.underlayIp,
      dstport: VXLAN_PORT,
      dev: host.uplink,
      learning: false,
      proxy: false,
      master: bridge,
      mtu: ctx.mtu,
      flags: null,
    }),
  );
}

/** Flood-list entry toward a remote VTEP. */
function floodEntry(vni: number, g: Host, sink: HostSink): void {
  sink.add(
    resource('fdb', { dev: vxlanName(vni), mac: ZERO_MAC, dst: g.underlayIp, master: false }),
  );
}

/** A remote instance: MAC → its VTEP, and IP → MAC on the bridge. */
function remoteEntries(ctx: NetworkView, vni: number, g: Host, i: Instance, sink: HostSink): void {
  sink.add(resource('fdb', { dev: vxlanName(vni), mac: i.mac, dst: g.underlayIp, master: false }));
  sink.add(resource('neigh', { dev: ctx.bridge, ip: i.ip, lladdr: i.mac }));
}

function l3Tunnel(ctx: NetworkOnHost, sink: HostSink, mode: 'ipip' | 'gre'): void {
  const { host } = ctx;
  sink.needForwarding();
  if (ctx.hasLocal) blockBase(ctx, sink);
  const dev = tunnelName(mode);
  sink.add(resource('tunnel', { name: dev, mode, local: host.underlayIp, dev: host.uplink }));
}

/** Routes to a remote host's blocks over the NBMA tunnel (GRE: and its neighbour entry). */
function tunnelRoutes(ctx: NetworkView, g: Host, sink: HostSink, mode: 'ipip' | 'gre'): void {
  const blocks = ctx.blocksOf(g.id);
  if (blocks.length === 0) return;
  const dev = tunnelName(mode);
  if (mode === 'gre') {
    sink.add(resource('neigh', { dev, ip: g.underlayIp, lladdr: g.underlayIp }));
  }
  for (const dst of blocks) {
    sink.add(resource('route', { dst, via: g.underlayIp, dev, onlink: true }));
  }
}
