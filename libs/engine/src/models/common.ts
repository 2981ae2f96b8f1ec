import {
  cidrContains,
  firstUsable as firstUsableInt,
  intToIp,
  parseCidr,
  prefixLength,
  type Instance,
} from '../../../model/src/index.js';

/** The first usable address of a block: the host's gateway for it. */
function firstUsable(cidr: string): string | null {
  const c = parseCidr(cidr);
  return c ? intToIp(firstUsableInt(c)) : null;
}
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
 * bridge, the router gateway when attached, and the local instances' ports.
 */
export function sharedSubnetBase(
  ctx: NetworkOnHost,
  sink: HostSink,
  portFlags: PortFlags | null,
): void {
  const { network, bridge, mtu } = ctx;
  sink.add(resource('bridge', { name: bridge, network: network.id, mtu, mac: ctx.routerMac }));
  const plen = prefixLength(network.cidr) ?? 32;
  const gateway = ctx.routed ? network.gateway : null;
  if (gateway !== null) {
    sink.add(resource('address', { dev: bridge, address: `${gateway}/${plen}` }));
    sink.needForwarding();
  }
  for (const i of ctx.local) sharedSubnetPort(ctx, i, sink, portFlags);
}

/** The port of one local instance of a shared-subnet network (as sharedSubnetBase emits it). */
export function sharedSubnetPort(
  ctx: NetworkOnHost,
  i: Instance,
  sink: HostSink,
  portFlags: PortFlags | null,
): void {
  const plen = prefixLength(ctx.network.cidr) ?? 32;
  sink.add(port(ctx, i, `${i.ip}/${plen}`, ctx.routed ? ctx.network.gateway : null, portFlags));
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
 * the gateway (first usable address) of every local block, and the ports. Instances get the
 * prefix of the block that contains their address, and that block's gateway.
 */
export function blockBase(ctx: NetworkOnHost, sink: HostSink): readonly string[] {
  const { network, bridge, mtu } = ctx;
  const blocks = ctx.blocksOf(ctx.host.id);
  sink.add(
    resource('bridge', {
      name: bridge,
      network: network.id,
      mtu,
      mac: ctx.routerMac ?? networkGatewayMac(network.id),
    }),
  );
  for (const b of blocks) {
    const gw = firstUsable(b);
    if (gw) sink.add(resource('address', { dev: bridge, address: `${gw}/${prefixLength(b)}` }));
  }
  for (const i of ctx.local) blockPortOf(ctx, i, blocks, sink);
  return blocks;
}

/** The port of one local instance of a block-based network (as blockBase emits it). */
export function blockPort(ctx: NetworkOnHost, i: Instance, sink: HostSink): void {
  blockPortOf(ctx, i, ctx.blocksOf(ctx.host.id), sink);
}

function blockPortOf(
  ctx: NetworkOnHost,
  i: Instance,
  blocks: readonly string[],
  sink: HostSink,
): void {
  const block = blocks.find((b) => cidrContains(b, i.ip));
  // Fail closed: an address outside every local block gets a host route and no gateway
  // (nothing routes toward it anyway).
  const address = block ? `${i.ip}/${prefixLength(block)}` : `${i.ip}/32`;
  sink.add(port(ctx, i, address, block ? firstUsable(block) : null, null));
}

/** For models without per-instance or per-host state toward other hosts. */
export function nothing(): void {}
