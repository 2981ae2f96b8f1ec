import { contains, ipToInt, type Instance } from '../../../model/src/index.js';
import { networkGatewayMac, vethName as vethOf } from '../names.js';
import { resource, type PortFlags } from '../resources.js';
import type { HostSink, NetworkOnHost } from './model.js';

/** Bridge ports of a `fabric` network: no learning, no flooding (DATAPLANE §7). */
export const FABRIC_INSTANCE_FLAGS: PortFlags = {
  learning: false,
  flood: false,
  mcastFlood: false,
  bcastFlood: false,
  neighSuppress: false,
};

/**
 * An L2 network with one subnet spanning hosts (bridge, vlan, overlay vxlan, fabric): the
 * bridge and the router gateway when attached (the local instances' ports are
 * sharedSubnetPort).
 */
export function sharedSubnetBase(ctx: NetworkOnHost, sink: HostSink): void {
  const { network, bridge, mtu } = ctx;
  sink.add(resource('bridge', { name: bridge, network: network.id, mtu, mac: ctx.routerMac }));
  const gateway = ctx.routed ? network.gateway : null;
  if (gateway !== null) {
    sink.add(resource('address', { dev: bridge, address: `${gateway}/${ctx.subnetPrefix}` }));
    sink.needForwarding();
  }
}

/** The port of one local instance of a shared-subnet network. */
export function sharedSubnetPort(
  ctx: NetworkOnHost,
  i: Instance,
  sink: HostSink,
  portFlags: PortFlags | null,
): void {
  const gateway = ctx.routed ? ctx.network.gateway : null;
  sink.add(port(ctx, i, `${i.ip}/${ctx.subnetPrefix}`, gateway, portFlags));
}

/** An instance's attachment to the network's bridge on this host. */
function port(
  ctx: NetworkOnHost,
  i: Instance,
  address: string,
  gateway: string | null,
  flags: PortFlags | null,
) {
  return resource('port', {
    instance: i.id,
    name: i.name,
    network: ctx.network.id,
    bridge: ctx.bridge,
    veth: vethOf(i.id),
    mac: i.mac,
    address,
    gateway,
    mtu: ctx.mtu,
    flags,
  });
}

/**
 * A block-based network (routed, overlay ipip/gre) on a host with instances: the bridge with
 * the gateway (first usable address) of every local block; returns the local blocks. The
 * ports are blockPort: instances get the prefix of the block that contains their address,
 * and that block's gateway.
 */
export function blockBase(ctx: NetworkOnHost, sink: HostSink): readonly string[] {
  const { network, bridge, mtu } = ctx;
  const blocks = ctx.localBlocks;
  sink.add(
    resource('bridge', {
      name: bridge,
      network: network.id,
      mtu,
      mac: ctx.routerMac ?? networkGatewayMac(network.id),
    }),
  );
  for (const b of ctx.localBlocksParsed) {
    sink.add(resource('address', { dev: bridge, address: `${b.gateway}/${b.prefix}` }));
  }
  return blocks;
}

/** The port of one local instance of a block-based network. */
export function blockPort(ctx: NetworkOnHost, i: Instance, sink: HostSink): void {
  const ip = ipToInt(i.ip);
  const block = Number.isNaN(ip) ? undefined : ctx.localBlocksParsed.find((b) => contains(b, ip));
  // Fail closed: an address outside every local block gets a host route and no gateway
  // (nothing routes toward it anyway).
  const address = block ? `${i.ip}/${block.prefix}` : `${i.ip}/32`;
  sink.add(port(ctx, i, address, block ? block.gateway : null, null));
}

/** For models without per-instance or per-host state toward other hosts. */
export function nothing(): void {}
