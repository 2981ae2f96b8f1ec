/**
 * Packet trace from desired state (`ovn-trace` style): how a packet from an instance reaches
 * another instance or an IPv4 address, or why it does not, computed ONLY from the resources
 * each host is told to apply (so the answer says what the data plane is told to do, not what
 * the topology intends). No packets are sent.
 *
 * The walk follows the kernel's order of decisions:
 * - source: the instance's `port` and its `bridge`;
 * - on-link destination (inside the port's prefix): the neighbour (ARP) resolution, then the
 *   L2 forwarding of the frame — local port, VLAN uplink, or VXLAN (FDB entry / flood list);
 * - off-link destination: the port's gateway (an `address` on the bridge), `ip_forward`, the
 *   longest-prefix route (connected `address`, `route`, or a route learned over BGP from the
 *   `bgp` speakers' announcements), the isolation `filter` of the ingress bridge, then the
 *   next hop: a local bridge (the neighbour entry of the distributed gateway and the L2
 *   transport), the underlay toward another host, or an ipip/gre tunnel;
 * - delivery to the destination port, and the reply traced back the same way (a ping needs
 *   both directions).
 * Egress and floating IPs (egress.ts): a destination outside every Lattice network (the
 * host's `netset`) that no Lattice route covers leaves by the host's own routes when the
 * ingress bridge's `filter` has an `snat` or the source has a `fip` there: the forward rule
 * that lets it out, the source translation (the floating IP first), then out of the uplink —
 * verdict `egress` (what lies beyond the uplink is not in the desired state), or, toward a
 * host's underlay address or a floating IP some host holds, over the underlay to that host.
 * A packet arriving at a host for one of its floating IPs (from the underlay, or from a local
 * bridge before routing) is translated to the instance's address first (prerouting DNAT).
 * The reply is traced back through the translations in reverse (conntrack).
 * Every hop names the resource keys it used; a drop names the rule or the missing entry.
 */
import {
  cidrContains,
  contains,
  ipToInt,
  isBlockBased,
  parseCidr,
  type Host,
  type Instance,
  type Network,
  type Topology,
} from '../../model/src/index.js';
import { gatewayMacOf } from './router.js';
import type { DesiredState } from './compute.js';
import type { ResourceKind, ResourceOf } from './resources.js';

export type TraceProto = 'icmp' | 'tcp' | 'udp';

export interface TraceHop {
  /**
   * What happened: source, gateway, route, filter, neighbour, vxlan, uplink, tunnel, …;
   * with NAT also dnat, snat, conntrack (a reply translated back) and external (the packet
   * leaves Lattice on the uplink, or the reply comes back from outside).
   */
  readonly step: string;
  /** The host (id) whose desired state this hop reads, when there is one. */
  readonly host?: string;
  readonly detail: string;
  /** Keys of the resources used, as in `GET /hosts/{h}/desired-state`. */
  readonly resources: string[];
}

export type TraceVerdict = 'delivered' | 'dropped' | 'egress';

export interface TraceResult {
  readonly from: string;
  readonly to: string;
  readonly proto: TraceProto;
  readonly port?: number;
  /**
   * `delivered` to the destination instance or host (and the reply back); `egress`: out of
   * Lattice on a host's uplink, source-translated (and the reply back); or `dropped`.
   */
  readonly verdict: TraceVerdict;
  readonly reason?: string;
  readonly hops: TraceHop[];
}

export interface TraceQuery {
  /** Source instance id. */
  readonly from: string;
  /** Destination: an instance id, or an IPv4 address. */
  readonly to: { readonly instance: string } | { readonly ip: string };
  readonly proto?: TraceProto;
  readonly port?: number;
}

/** What a network policy (issue 12) says about one direction of the flow at one host. */
export interface PolicyVerdict {
  readonly allow: boolean;
  /** The policy rule that decided, for the hop and the drop reason. */
  readonly rule: string;
  /** Resource keys of the policy state used. */
  readonly resources: readonly string[];
}

/**
 * HOOK for network policy (issue 12): called at the source host for egress (after the
 * isolation filter) and at the destination host for ingress (before delivery). Return null
 * when no policy applies to the instance (`policyTraceHook` reads the policy resources).
 * On the reply walk a verdict is shown but never drops: rules are stateful, so the reply of
 * a connection the forward walk let through passes as `ct state established`.
 */
export type PolicyHook = (flow: {
  readonly direction: 'egress' | 'ingress';
  readonly host: string;
  readonly instance: Instance;
  readonly state: DesiredState;
  readonly srcIp: string;
  readonly dstIp: string;
  readonly proto: TraceProto;
  readonly port?: number;
}) => PolicyVerdict | null;

export interface TraceOptions {
  readonly policy?: PolicyHook;
}

type Port = ResourceOf<'port'>;

/** Where a packet left Lattice (egress): the uplink and its translated source address. */
interface External {
  readonly dev: string;
  readonly source: string;
}

/** What one direction ended in. */
type Outcome =
  | {
      readonly ok: true;
      readonly instance: Instance | null;
      readonly host: string;
      /** Left Lattice on `host`'s uplink (instance null). */
      readonly external?: External;
    }
  | { readonly ok: false; readonly reason: string };

/** A translation the forward walk went through, which conntrack reverses for the reply. */
interface Translation {
  readonly host: string;
  readonly kind: 'snat' | 'dnat';
  readonly from: string;
  readonly to: string;
  /** The resource whose rule translated. */
  readonly key: string;
}

const ZERO_MAC = '00:00:00:00:00:00';
const MAX_ROUTED_HOPS = 8;

class Dropped extends Error {}

/** Traces one packet (and its reply) through the desired state of every host. */
export function trace(
  topology: Topology,
  stateOf: (hostId: string) => DesiredState,
  q: TraceQuery,
  opts: TraceOptions = {},
): TraceResult {
  const proto = q.proto ?? 'icmp';
  const src = topology.instances.get(q.from);
  const dstInstance = 'instance' in q.to ? topology.instances.get(q.to.instance) : undefined;
  const toLabel = 'instance' in q.to ? (dstInstance ? dstInstance.name : q.to.instance) : q.to.ip;
  const base = {
    from: src?.name ?? q.from,
    to: toLabel,
    proto,
    ...(q.port !== undefined && proto !== 'icmp' ? { port: q.port } : {}),
  };
  const t = new Tracer(topology, stateOf, proto, q.port, opts.policy);
  const fail = (reason: string): TraceResult => ({
    ...base,
    verdict: 'dropped',
    reason,
    hops: [...t.hops, { step: 'drop', detail: reason, resources: [] }],
  });
  if (!src) return fail(`unknown source instance ${q.from}`);
  if ('instance' in q.to && !dstInstance)
    return fail(`unknown destination instance ${q.to.instance}`);
  const dstIp = dstInstance ? dstInstance.ip : (q.to as { ip: string }).ip;
  if (Number.isNaN(ipToInt(dstIp))) return fail(`${dstIp} is not an IPv4 address`);

  const out = t.walk(src, dstIp);
  if (!out.ok) return fail(out.reason);
  if (dstInstance && out.instance?.id !== dstInstance.id) {
    const got = out.instance
      ? `${out.instance.name} (network ${t.netName(out.instance.networkId)})`
      : out.external
        ? `out of Lattice on ${out.external.dev} of host ${t.hostName(out.host)}`
        : 'a host';
    return fail(
      `${dstIp} leads to ${got}, not to ${dstInstance.name} (network ` +
        `${t.netName(dstInstance.networkId)}): the networks are isolated (no router between them)`,
    );
  }
  if (out.instance || out.external) {
    // The reply goes to the source as the destination saw it (translated, with NAT).
    const seen = t.source;
    t.prefix = 'reply ';
    const back = out.instance
      ? t.walk(out.instance, seen)
      : t.fromOutside(out.host, dstIp, out.external!);
    if (!back.ok) return fail(`the reply is dropped: ${back.reason}`);
    if (back.instance?.id !== src.id) {
      return fail(
        `the reply to ${seen} leads to ${back.instance?.name ?? 'a host'}, not ${src.name}`,
      );
    }
  }
  return { ...base, verdict: out.external ? 'egress' : 'delivered', hops: t.hops };
}

interface BridgeCtx {
  readonly host: string;
  readonly bridge: ResourceOf<'bridge'>;
  readonly network: Network | undefined;
}

interface Candidate {
  readonly prefix: number;
  readonly rank: number;
  readonly cidr: string;
  readonly kind: 'connected' | 'route' | 'bgp';
  readonly dev: string | null;
  readonly via: string | null;
  readonly resources: string[];
  readonly detail: string;
  /** BGP: the speakers (host ids) the route came through, announcer last. */
  readonly speakers?: readonly string[];
}

class Tracer {
  readonly hops: TraceHop[] = [];
  prefix = '';
  /** Source address of the direction being walked, as translated so far (policy hook, NAT). */
  private srcIp = '';
  /** The translations of the forward walk (the reply walk reverses them). */
  private readonly nat: Translation[] = [];
  private readonly byUnderlay = new Map<string, Host>();
  private readonly ports = new Map<string, Port[]>();

  constructor(
    private readonly topology: Topology,
    private readonly stateOf: (hostId: string) => DesiredState,
    private readonly proto: TraceProto,
    private readonly port: number | undefined,
    private readonly policy: PolicyHook | undefined,
  ) {
    for (const h of topology.hosts.values()) this.byUnderlay.set(h.underlayIp, h);
  }

  // ---- helpers ---------------------------------------------------------------------------

  private hop(step: string, host: string | undefined, detail: string, resources: string[]): void {
    this.hops.push({
      step: this.prefix + step,
      ...(host !== undefined ? { host } : {}),
      detail,
      resources,
    });
  }

  private drop(reason: string): never {
    throw new Dropped(reason);
  }

  hostName(id: string): string {
    return this.topology.hosts.get(id)?.name ?? id;
  }

  netName(id: string): string {
    return this.topology.networks.get(id)?.name ?? id;
  }

  private get<K extends ResourceKind>(
    host: string,
    kind: K,
    id: string,
  ): ResourceOf<K> | undefined {
    const r = this.stateOf(host).get(`${kind}:${id}`);
    return r?.kind === kind ? (r as ResourceOf<K>) : undefined;
  }

  private all<K extends ResourceKind>(host: string, kind: K): ResourceOf<K>[] {
    const out: ResourceOf<K>[] = [];
    for (const r of this.stateOf(host).values()) if (r.kind === kind) out.push(r as ResourceOf<K>);
    return out;
  }

  private portsOf(host: string): Port[] {
    let ps = this.ports.get(host);
    if (!ps) this.ports.set(host, (ps = this.all(host, 'port')));
    return ps;
  }

  private require<K extends ResourceKind>(
    host: string,
    kind: K,
    id: string,
    why: string,
  ): ResourceOf<K> {
    const r = this.get(host, kind, id);
    if (!r) this.drop(`missing ${kind}:${id} on host ${this.hostName(host)}: ${why}`);
    return r;
  }

  private bridgeCtx(host: string, name: string): BridgeCtx {
    const bridge = this.require(host, 'bridge', name, 'the bridge does not exist');
    return { host, bridge, network: this.topology.networks.get(bridge.spec.network) };
  }

  private runPolicy(
    direction: 'egress' | 'ingress',
    host: string,
    instance: Instance,
    srcIp: string,
    dstIp: string,
  ): void {
    // ---- HOOK: network policy verdict (issue 12) ----------------------------------------
    // When policies exist, `this.policy` evaluates them against the host's desired state
    // (its policy resources) and the flow; a deny ends the trace naming the rule.
    if (!this.policy) return;
    const v = this.policy({
      direction,
      host,
      instance,
      state: this.stateOf(host),
      srcIp,
      dstIp,
      proto: this.proto,
      ...(this.port !== undefined ? { port: this.port } : {}),
    });
    if (!v) return;
    if (this.prefix !== '') {
      this.hop(`policy ${direction}`, host, 'allowed: reply of an allowed connection (conntrack)', [
        ...v.resources,
      ]);
      return;
    }
    this.hop(`policy ${direction}`, host, `${v.allow ? 'allowed' : 'denied'} by ${v.rule}`, [
      ...v.resources,
    ]);
    if (!v.allow) this.drop(`network policy denies ${direction} of ${instance.name}: ${v.rule}`);
  }

  /** On the reply walk (`prefix` set): conntrack, not the NAT rules, translates. */
  private get reply(): boolean {
    return this.prefix !== '';
  }

  /** The source address of the last walk as its destination saw it (after any SNAT). */
  get source(): string {
    return this.srcIp;
  }

  // ---- the walk --------------------------------------------------------------------------

  walk(src: Instance, dstIp: string): Outcome {
    this.srcIp = src.ip;
    return this.guard(() => this.fromInstance(src, dstIp));
  }

  /** The reply of an egress: from `remote` back to the translated source on `host`. */
  fromOutside(host: string, remote: string, ext: External): Outcome {
    this.srcIp = remote;
    return this.guard(() => {
      this.hop(
        'external',
        host,
        `from ${remote} to ${ext.source}: in on ${ext.dev} of host ${this.hostName(host)}`,
        [],
      );
      return this.route(host, null, ext.source, 0);
    });
  }

  private guard(walk: () => Outcome): Outcome {
    try {
      return walk();
    } catch (e) {
      if (e instanceof Dropped) return { ok: false, reason: e.message };
      throw e;
    }
  }

  private fromInstance(src: Instance, dstIp: string): Outcome {
    const h = src.hostId;
    if (!this.topology.hosts.has(h)) this.drop(`the host of ${src.name} does not exist`);
    const port = this.portsOf(h).find((p) => p.spec.instance === src.id);
    if (!port) {
      this.drop(
        `no port resource for ${src.name} on host ${this.hostName(h)}: it is not plugged in`,
      );
    }
    const br = this.bridgeCtx(h, port.spec.bridge);
    this.hop(
      'source',
      h,
      `${src.name} (${src.ip}, ${port.spec.mac}) on ${port.spec.veth} in bridge ${port.spec.bridge} ` +
        `of network ${this.netName(port.spec.network)} on host ${this.hostName(h)}`,
      [port.key, br.bridge.key],
    );
    if (dstIp === src.ip) return { ok: true, instance: src, host: h };
    const subnet = parseCidr(port.spec.address);
    const dst = ipToInt(dstIp);
    if (subnet && contains(subnet, dst)) {
      this.runPolicy('egress', h, src, src.ip, dstIp);
      return this.l2(br, dstIp, 'instance');
    }
    const gw = port.spec.gateway;
    if (gw === null) {
      this.drop(
        `${dstIp} is outside ${port.spec.address} and ${port.key} has no gateway: ` +
          `network ${this.netName(port.spec.network)} is attached to no router`,
      );
    }
    const gwAddr = this.all(h, 'address').find(
      (a) => a.spec.dev === port.spec.bridge && a.spec.address.split('/')[0] === gw,
    );
    if (!gwAddr) {
      this.drop(
        `missing address:${port.spec.bridge}:${gw}/… on host ${this.hostName(h)}: ` +
          `the gateway ${gw} of ${src.name} is not served there`,
      );
    }
    const net = br.network;
    const routers = net
      ? [...this.topology.routers.values()]
          .filter((r) => r.networkIds.includes(net.id))
          .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      : [];
    const via = routers.length
      ? `router ${routers.map((r) => r.name).join(', ')} (distributed gateway ${gw}, MAC ` +
        `${gatewayMacOf(routers.map((r) => r.id))})`
      : net && !isBlockBased(net)
        ? `the network's gateway ${gw} (MAC ${br.bridge.spec.mac ?? 'of the bridge'}, served ` +
          'on each of its hosts for egress or a floating IP)'
        : `the host's block gateway ${gw} (MAC ${br.bridge.spec.mac ?? 'of the bridge'})`;
    this.hop('gateway', h, `to ${via} on bridge ${port.spec.bridge}`, [gwAddr.key]);
    // Prerouting comes before the forward chain: a floating IP of this host is translated
    // before the policy and the isolation filter see the packet.
    const to = this.arrive(h, dstIp);
    this.runPolicy('egress', h, src, src.ip, to);
    return this.route(h, br, to, 0);
  }

  /**
   * Prerouting on `host` for a packet toward `dstIp`: the DNAT of a floating IP the host
   * holds, or on the reply walk the reverse of an SNAT made there (conntrack). Returns the
   * destination after translation.
   */
  private arrive(host: string, dstIp: string): string {
    if (this.reply) {
      const t = this.nat.find((n) => n.kind === 'snat' && n.host === host && n.to === dstIp);
      if (!t) return dstIp;
      this.hop(
        'conntrack',
        host,
        `reply of a translated connection: destination ${dstIp} → ${t.from} (reverses the snat of ${t.key})`,
        [t.key],
      );
      return t.from;
    }
    const f = this.get(host, 'fip', dstIp);
    if (!f) return dstIp;
    this.hop(
      'dnat',
      host,
      `prerouting: ip daddr ${dstIp} dnat ip to ${f.spec.ip} (floating IP of ${f.spec.name})`,
      [f.key],
    );
    this.nat.push({ host, kind: 'dnat', from: dstIp, to: f.spec.ip, key: f.key });
    return f.spec.ip;
  }

  /** Routing on `host`: the packet came in from `ingress` (a bridge) or from the underlay. */
  private route(host: string, ingress: BridgeCtx | null, to: string, depth: number): Outcome {
    if (depth > MAX_ROUTED_HOPS) this.drop(`routing loop toward ${to}`);
    // From the underlay: prerouting (from a local bridge, fromInstance did it).
    const dstIp = ingress === null ? this.arrive(host, to) : to;
    const own = this.all(host, 'address').find((a) => a.spec.address.split('/')[0] === dstIp);
    if (own) {
      this.hop('deliver', host, `${dstIp} is an address of host ${this.hostName(host)}`, [own.key]);
      return { ok: true, instance: null, host };
    }
    if (dstIp === this.hostOf(host)?.underlayIp) {
      this.hop(
        'deliver',
        host,
        `${dstIp} is the underlay address of host ${this.hostName(host)}`,
        [],
      );
      return { ok: true, instance: null, host };
    }
    const fwd = this.get(host, 'sysctl', 'net.ipv4.ip_forward');
    if (!fwd || fwd.spec.value !== '1') {
      this.drop(
        `missing sysctl:net.ipv4.ip_forward=1 on host ${this.hostName(host)}: the host does not forward`,
      );
    }
    const best = this.lookup(host, dstIp);
    if (!best) {
      if (ingress) {
        const out = this.egress(host, ingress, dstIp, fwd.key, depth);
        if (out) return out;
      }
      const block = this.topology.blocks.find(
        (b) => b.hostId !== host && cidrContains(b.cidr, dstIp),
      );
      const outside =
        ingress !== null &&
        ![...this.topology.networks.values()].some((n) => cidrContains(n.cidr, dstIp));
      const hint = block
        ? ` (${dstIp} is in block ${block.cidr} of host ${this.hostName(block.hostId)}: ` +
          `expected route:${block.cidr} or a BGP route for it)`
        : outside
          ? ` (${dstIp} is outside every Lattice network, and nothing lets it out: ` +
            `${ingress.network ? `network ${ingress.network.name}` : `bridge ${ingress.bridge.spec.name}`} ` +
            `has no egress (natOutgoing) and ${this.srcIp} no floating IP)`
          : '';
      this.drop(
        `no route to ${dstIp} on host ${this.hostName(host)}: no route resource, connected ` +
          `address or BGP-learned route covers it${hint}`,
      );
    }
    this.hop('route', host, best.detail, [fwd.key, ...best.resources]);
    for (const s of best.speakers ?? []) {
      const role = s === best.speakers![best.speakers!.length - 1] ? 'announces' : 'reflects';
      this.hop('bgp', s, `host ${this.hostName(s)}'s speaker ${role} ${best.cidr}`, [
        'bgp:speaker',
      ]);
    }
    if (ingress) this.filter(ingress, best, dstIp);
    if (best.kind === 'connected') {
      return this.l2(this.bridgeCtx(host, best.dev!), dstIp, 'host');
    }
    const via = best.via!;
    const next = this.byUnderlay.get(via);
    if (!next)
      this.drop(
        `next hop ${via} of ${best.cidr} on host ${this.hostName(host)} is no host's underlay address`,
      );
    if (best.dev && best.dev !== this.hostOf(host)?.uplink) {
      const tun = this.require(host, 'tunnel', best.dev, `route ${best.cidr} goes over it`);
      const used: string[] = [tun.key];
      if (tun.spec.mode === 'gre') {
        used.push(
          this.require(
            host,
            'neigh',
            `${tun.spec.name}:${via}`,
            'the NBMA GRE device takes the outer destination from it',
          ).key,
        );
      }
      this.hop(
        'tunnel',
        host,
        `encapsulated (${tun.spec.mode}) by ${tun.spec.name} from ${tun.spec.local} to ${via} ` +
          `(host ${next.name})`,
        used,
      );
      const peer = this.require(next.id, 'tunnel', best.dev, 'nothing decapsulates the packet');
      this.hop('tunnel', next.id, `decapsulated by ${peer.spec.name} on host ${next.name}`, [
        peer.key,
      ]);
    } else {
      this.hop('underlay', host, `forwarded over the underlay to ${via} (host ${next.name})`, []);
    }
    return this.route(next.id, null, dstIp, depth + 1);
  }

  private hostOf(id: string): Host | undefined {
    return this.topology.hosts.get(id);
  }

  /**
   * Egress (egress.ts) of a packet from bridge `ingress` that no Lattice route covers: when
   * `dstIp` is outside the host's netset and the filter's `snat` or the source's floating IP
   * lets it out, the forward rule, the source translation (on the reply walk: the reverse of
   * the DNAT that brought the connection in) and the uplink; then the host or floating IP
   * it is addressed to, or out of Lattice. Null when egress does not apply (the caller
   * reports the missing route).
   */
  private egress(
    host: string,
    ingress: BridgeCtx,
    dstIp: string,
    fwdKey: string,
    depth: number,
  ): Outcome | null {
    const netset = this.get(host, 'netset', 'internal');
    const internal = netset?.spec.cidrs ?? [];
    if (internal.some((c) => cidrContains(c, dstIp))) return null;
    const name = ingress.bridge.spec.name;
    const f = this.get(host, 'filter', name);
    const fip = this.all(host, 'fip').find(
      (x) => x.spec.bridge === name && x.spec.ip === this.srcIp,
    );
    const snat = f?.spec.snat ?? null;
    if (!fip && snat === null) return null;
    const h = this.hostOf(host)!;
    const dev = fip?.spec.dev ?? h.uplink;
    const net = ingress.network ? `network ${ingress.network.name}` : `bridge ${name}`;
    const outside = netset
      ? `${dstIp} is not in @internal { ${internal.join(', ')} }`
      : `missing netset:internal on host ${h.name}: @internal is empty`;
    const setKeys = netset ? [netset.key] : [];
    this.hop(
      'route',
      host,
      `no Lattice route covers ${dstIp}: the host's own routes (not in the desired state) ` +
        `take it out of ${dev}`,
      [fwdKey],
    );

    // Forward chain: the isolation rules of the ingress bridge, in their rendered order.
    const accepted = f?.spec.accept.find((c) => cidrContains(c, dstIp));
    if (!f) {
      this.hop('filter', host, `no filter for ${name}: forwarded unfiltered (policy accept)`, []);
    } else if (accepted) {
      this.hop(
        'filter',
        host,
        `accept: iifname "${name}" ip daddr { ${f.spec.accept.join(', ')} } accept (${dstIp} in ${accepted})`,
        [f.key],
      );
    } else if (fip) {
      this.hop(
        'filter',
        host,
        `accept: iifname "${name}" ip saddr ${fip.spec.ip} ip daddr != @internal accept ` +
          `(floating IP ${fip.spec.address} of ${fip.spec.name}; ${outside})`,
        [fip.key, ...setKeys],
      );
    } else {
      this.hop(
        'filter',
        host,
        `accept: iifname "${name}" ip daddr != @internal accept (egress of ${net}; ${outside})`,
        [f.key, ...setKeys],
      );
    }

    // Postrouting: the source translation (conntrack's reverse of a DNAT for a reply).
    const back = this.reply
      ? this.nat.find((n) => n.kind === 'dnat' && n.host === host && n.to === this.srcIp)
      : undefined;
    let source: string;
    if (back) {
      this.hop(
        'conntrack',
        host,
        `reply of a translated connection: source ${this.srcIp} → ${back.from} (reverses the dnat of ${back.key})`,
        [back.key],
      );
      source = back.from;
    } else if (fip) {
      this.hop(
        'snat',
        host,
        `postrouting: iifname "${name}" ip saddr ${fip.spec.ip} ip daddr != @internal ` +
          `snat ip to ${fip.spec.address} (floating IP of ${fip.spec.name})`,
        [fip.key],
      );
      source = fip.spec.address;
      this.nat.push({ host, kind: 'snat', from: this.srcIp, to: source, key: fip.key });
    } else {
      this.hop(
        'snat',
        host,
        `postrouting: iifname "${name}" ip daddr != @internal snat ip to ${snat} ` +
          `(egress of ${net}: the host's underlay address)`,
        [f!.key],
      );
      source = snat!;
      this.nat.push({ host, kind: 'snat', from: this.srcIp, to: source, key: f!.key });
    }
    this.srcIp = source;

    // The underlay: a floating IP some host holds, a host's address, or out of Lattice.
    const holder = [...this.topology.hosts.keys()].find((x) => this.get(x, 'fip', dstIp));
    const next = holder !== undefined ? this.hostOf(holder) : this.byUnderlay.get(dstIp);
    if (next) {
      const what =
        holder !== undefined
          ? `the floating IP host ${next.name} holds`
          : `the underlay address of host ${next.name}`;
      this.hop(
        'underlay',
        host,
        `out of ${dev} from ${source} over the underlay to ${dstIp} (${what})`,
        [],
      );
      return this.route(next.id, null, dstIp, depth + 1);
    }
    this.hop(
      'external',
      host,
      `out of ${dev} of host ${h.name} from ${source} to ${dstIp}: it leaves Lattice ` +
        '(what lies beyond the uplink is not in the desired state)',
      [],
    );
    return { ok: true, instance: null, host, external: { dev, source } };
  }

  /** The isolation filter of the ingress bridge (isolation.ts, FilterSpec). */
  private filter(ingress: BridgeCtx, best: Candidate, dstIp: string): void {
    const name = ingress.bridge.spec.name;
    const f = this.get(ingress.host, 'filter', name);
    if (!f) {
      this.hop(
        'filter',
        ingress.host,
        `no filter for ${name}: forwarded unfiltered (policy accept)`,
        [],
      );
      return;
    }
    if (best.kind === 'connected' && best.dev === name) {
      this.hop('filter', ingress.host, `accept: iifname "${name}" oifname "${name}" accept`, [
        f.key,
      ]);
      return;
    }
    const cidr = f.spec.accept.find((c) => cidrContains(c, dstIp));
    if (cidr) {
      this.hop(
        'filter',
        ingress.host,
        `accept: iifname "${name}" ip daddr { ${f.spec.accept.join(', ')} } accept (${dstIp} in ${cidr})`,
        [f.key],
      );
      return;
    }
    const net = ingress.network ? `network ${ingress.network.name}` : `bridge ${name}`;
    this.drop(
      `${f.key} on host ${this.hostName(ingress.host)} drops it: rule iifname "${name}" drop ` +
        `(${dstIp} is not in { ${f.spec.accept.join(', ')} }: no router connects ${net} to it)`,
    );
  }

  /** Longest-prefix match over connected addresses, routes and BGP-learned routes. */
  private lookup(host: string, dstIp: string): Candidate | null {
    const dst = ipToInt(dstIp);
    const cands: Candidate[] = [];
    for (const a of this.all(host, 'address')) {
      const c = parseCidr(a.spec.address);
      if (c && contains(c, dst)) {
        cands.push({
          prefix: c.prefix,
          rank: 0,
          cidr: `${a.spec.address}`,
          kind: 'connected',
          dev: a.spec.dev,
          via: null,
          resources: [a.key],
          detail: `${dstIp} is on the connected subnet of ${a.spec.address} on ${a.spec.dev}`,
        });
      }
    }
    for (const r of this.all(host, 'route')) {
      const c = parseCidr(r.spec.dst);
      if (c && contains(c, dst)) {
        cands.push({
          prefix: c.prefix,
          rank: 1,
          cidr: r.spec.dst,
          kind: 'route',
          dev: r.spec.dev,
          via: r.spec.via,
          resources: [r.key],
          detail: `${dstIp} matches route ${r.spec.dst} via ${r.spec.via}${r.spec.dev ? ` dev ${r.spec.dev}` : ''}${r.spec.onlink ? ' onlink' : ''}`,
        });
      }
    }
    for (const b of this.bgpRoutes(host)) {
      const c = parseCidr(b.cidr);
      if (c && contains(c, dst)) cands.push({ ...b, prefix: c.prefix });
    }
    cands.sort((a, b) => b.prefix - a.prefix || a.rank - b.rank);
    return cands[0] ?? null;
  }

  /**
   * Routes the host's BIRD speaker learns: the announcements of every peer with an
   * established session (both ends configured), and what a route reflector peer reflects
   * (from its clients to everyone, from non-clients to its clients); next hop preserved.
   */
  private bgpRoutes(host: string): Candidate[] {
    const me = this.get(host, 'bgp', 'speaker');
    if (!me) return [];
    const h = this.hostOf(host)!;
    const session = (a: ResourceOf<'bgp'>, bAddr: string) =>
      a.spec.peers.find((p) => p.address === bAddr);
    const speaker = (addr: string) => {
      const x = this.byUnderlay.get(addr);
      return x ? { host: x, bgp: this.get(x.id, 'bgp', 'speaker') } : null;
    };
    const out: Candidate[] = [];
    const learn = (cidr: string, origin: Host, speakers: string[], how: string) => {
      if (me.spec.announce.includes(cidr)) return;
      out.push({
        prefix: 0,
        rank: 2,
        cidr,
        kind: 'bgp',
        dev: null,
        via: origin.underlayIp,
        resources: [me.key],
        speakers,
        detail: `${cidr} learned over BGP ${how}, next hop ${origin.underlayIp} (host ${origin.name})`,
      });
    };
    for (const p of me.spec.peers) {
      const x = speaker(p.address);
      if (!x?.bgp || !session(x.bgp, h.underlayIp)) continue;
      for (const c of x.bgp.spec.announce) learn(c, x.host, [x.host.id], `from ${x.host.name}`);
      if (!x.bgp.spec.routeReflector) continue;
      const meClient = session(x.bgp, h.underlayIp)!.rrClient;
      for (const q of x.bgp.spec.peers) {
        if (q.address === h.underlayIp) continue;
        const y = speaker(q.address);
        if (!y?.bgp || !session(y.bgp, x.host.underlayIp)) continue;
        if (!q.rrClient && !meClient) continue;
        for (const c of y.bgp.spec.announce) {
          learn(
            c,
            y.host,
            [x.host.id, y.host.id],
            `from ${y.host.name}, reflected by ${x.host.name}`,
          );
        }
      }
    }
    return out;
  }

  /**
   * L2 on a network's bridge of `host` toward `dstIp`: the neighbour resolution (by the
   * instance's ARP, or by the host routing into the network), then the frame's forwarding.
   */
  private l2(br: BridgeCtx, dstIp: string, sender: 'instance' | 'host'): Outcome {
    const { host } = br;
    const bridge = br.bridge.spec.name;
    const n = br.network;
    const fabric = n?.model === 'fabric';
    const transport: 'none' | 'vlan' | 'vxlan' =
      n?.model === 'vlan' || (fabric && n?.transport === 'vlan')
        ? 'vlan'
        : (n?.model === 'overlay' && n.encapsulation === 'vxlan') || fabric
          ? 'vxlan'
          : 'none';
    const dev =
      transport === 'vlan'
        ? this.all(host, 'uplink').find((u) => u.spec.master === bridge)
        : transport === 'vxlan'
          ? this.all(host, 'vxlan').find((v) => v.spec.master === bridge)
          : undefined;
    const netLabel = n ? `network ${n.name}` : `bridge ${bridge}`;
    const local = this.portsOf(host).find(
      (p) => p.spec.bridge === bridge && p.spec.address.split('/')[0] === dstIp,
    );

    // 1. Neighbour resolution: IP → MAC.
    let mac: string;
    if (fabric) {
      const neighDev = transport === 'vlan' ? bridge : dev?.spec.name;
      if (!neighDev)
        this.drop(`missing the VXLAN device of ${netLabel} on host ${this.hostName(host)}`);
      const ne = this.require(
        host,
        'neigh',
        `${neighDev}:${dstIp}`,
        `fabric answers ARP for ${dstIp} only from pushed neighbour entries (flooding is off)`,
      );
      mac = ne.spec.lladdr;
      this.hop(
        'neighbour',
        host,
        `${dstIp} is ${mac}: ARP answered locally from the pushed entry`,
        [ne.key],
      );
    } else if (local) {
      mac = local.spec.mac;
      this.hop(
        'neighbour',
        host,
        `${dstIp} is ${mac}: ARP answered on bridge ${bridge} by the local port`,
        [local.key],
      );
    } else {
      // The host's neighbour entries serve the host's own routing; an instance ARPs.
      const ne = sender === 'host' ? this.get(host, 'neigh', `${bridge}:${dstIp}`) : undefined;
      if (ne) {
        mac = ne.spec.lladdr;
        this.hop('neighbour', host, `${dstIp} is ${mac} (permanent neighbour entry)`, [ne.key]);
      } else if (transport === 'none') {
        this.drop(
          `no instance with ${dstIp} on bridge ${bridge} of host ${this.hostName(host)}: ` +
            (n?.model === 'bridge'
              ? `${netLabel} is a per-host island (model bridge: no transport to other hosts)`
              : `${netLabel} has no L2 transport between hosts`),
        );
      } else if (sender === 'host') {
        this.drop(
          `missing neigh:${bridge}:${dstIp} on host ${this.hostName(host)}: behind the distributed ` +
            'gateway a host cannot resolve a remote instance by ARP',
        );
      } else {
        if (!dev)
          this.drop(
            `missing the ${transport === 'vlan' ? 'uplink' : 'VXLAN device'} of ${netLabel} on host ${this.hostName(host)}`,
          );
        const holder = this.remoteHolder(host, dev, (p) => p.spec.address.split('/')[0] === dstIp);
        if (!holder) {
          this.drop(
            `no instance has ${dstIp} on ${netLabel}'s L2 segment (${transport === 'vlan' ? `VLAN ${(dev as ResourceOf<'uplink'>).spec.vlanId}` : `VNI ${(dev as ResourceOf<'vxlan'>).spec.vni}`})`,
          );
        }
        const used: string[] = [dev.key];
        if (dev.kind === 'vxlan') {
          const ul = this.hostOf(holder.host)!.underlayIp;
          const flood = this.require(
            host,
            'fdb',
            `${dev.spec.name}:${ZERO_MAC}:${ul}`,
            `the ARP broadcast for ${dstIp} is not flooded to host ${this.hostName(holder.host)}`,
          );
          used.push(flood.key);
        }
        mac = holder.port.spec.mac;
        this.hop(
          'neighbour',
          host,
          `${dstIp} is ${mac}: ARP broadcast answered by host ${this.hostName(holder.host)}`,
          used,
        );
      }
    }

    // 2. Forwarding of the frame to `mac`.
    const localByMac = this.portsOf(host).find(
      (p) => p.spec.bridge === bridge && p.spec.mac === mac,
    );
    if (localByMac) {
      if (fabric) this.staticFdb(host, localByMac);
      this.hop('bridge', host, `switched by bridge ${bridge} to port ${localByMac.spec.veth}`, [
        br.bridge.key,
      ]);
      return this.deliver(host, localByMac, dstIp);
    }
    if (transport === 'none')
      this.drop(`no port with ${mac} on bridge ${bridge} of host ${this.hostName(host)}`);
    if (!dev)
      this.drop(
        `missing the ${transport === 'vlan' ? 'uplink' : 'VXLAN device'} of ${netLabel} on host ${this.hostName(host)}`,
      );
    const macMatch = (p: Port) => p.spec.mac === mac;
    if (dev.kind === 'uplink') {
      const used: string[] = [dev.key];
      if (fabric) {
        used.push(
          this.require(
            host,
            'fdb',
            `${dev.spec.name}:${mac}`,
            'flooding is off: the frame goes nowhere',
          ).key,
        );
      }
      const holder = this.remoteHolder(host, dev, macMatch);
      if (!holder) this.drop(`no host on VLAN ${dev.spec.vlanId} has a port with ${mac}`);
      this.hop(
        'uplink',
        host,
        `out of ${dev.spec.name} onto VLAN ${dev.spec.vlanId} toward host ${this.hostName(holder.host)}`,
        used,
      );
      this.hop(
        'uplink',
        holder.host,
        `in from ${holder.dev.spec.name} to bridge ${holder.port.spec.bridge}`,
        [holder.dev.key],
      );
      if (fabric) this.staticFdb(holder.host, holder.port);
      return this.deliver(holder.host, holder.port, dstIp);
    }
    // VXLAN
    const vx = dev;
    const entry = this.get(host, 'fdb', `${vx.spec.name}:${mac}`);
    let vtep: string;
    const used: string[] = [vx.key];
    if (entry?.spec.dst) {
      vtep = entry.spec.dst;
      used.push(entry.key);
    } else if (fabric) {
      this.drop(
        `missing fdb:${vx.spec.name}:${mac} on host ${this.hostName(host)}: flooding is off, the frame goes nowhere`,
      );
    } else {
      const floods = this.all(host, 'fdb').filter(
        (f) => f.spec.dev === vx.spec.name && f.spec.mac === ZERO_MAC && f.spec.dst,
      );
      const holder = floods
        .map((f) => ({ f, h: this.byUnderlay.get(f.spec.dst!) }))
        .find(({ h }) => h && this.vxlanHolder(h.id, vx.spec.vni, macMatch));
      if (!holder) {
        this.drop(
          `missing fdb:${vx.spec.name}:${mac} on host ${this.hostName(host)}, and no flood-list entry ` +
            'reaches a host with that MAC',
        );
      }
      vtep = holder.f.spec.dst!;
      used.push(...floods.map((f) => f.key));
      this.hop('vxlan', host, `no FDB entry for ${mac}: flooded by the flood list`, []);
    }
    const remote = this.byUnderlay.get(vtep);
    if (!remote) this.drop(`VTEP ${vtep} is no host's underlay address`);
    this.hop(
      'vxlan',
      host,
      `encapsulated by ${vx.spec.name} (VNI ${vx.spec.vni}) from ${vx.spec.local} to VTEP ${vtep} (host ${remote.name})`,
      used,
    );
    const there = this.vxlanHolder(remote.id, vx.spec.vni, macMatch);
    const rvx = this.get(remote.id, 'vxlan', vx.spec.name);
    if (!rvx || rvx.spec.vni !== vx.spec.vni) {
      this.drop(
        `missing vxlan:${vx.spec.name} on host ${remote.name}: nothing decapsulates VNI ${vx.spec.vni}`,
      );
    }
    if (!there)
      this.drop(
        `no port with ${mac} behind ${vx.spec.name} on host ${remote.name}: the FDB entry is stale`,
      );
    this.hop(
      'vxlan',
      remote.id,
      `decapsulated by ${rvx.spec.name} into bridge ${rvx.spec.master}`,
      [rvx.key],
    );
    if (fabric) this.staticFdb(remote.id, there);
    return this.deliver(remote.id, there, dstIp);
  }

  /** Fabric: learning is off, so a local port is reached only through its static entry. */
  private staticFdb(host: string, p: Port): void {
    const e = this.require(
      host,
      'fdb',
      `${p.spec.veth}:${p.spec.mac}`,
      'learning is off: the bridge does not know the port of that MAC',
    );
    this.hop('fdb', host, `static entry ${p.spec.mac} → ${p.spec.veth}`, [e.key]);
  }

  /** A port matching `match` on another host of the same L2 segment (VLAN id or VNI). */
  private remoteHolder(
    host: string,
    dev: ResourceOf<'uplink'> | ResourceOf<'vxlan'>,
    match: (p: Port) => boolean,
  ): { host: string; port: Port; dev: ResourceOf<'uplink'> | ResourceOf<'vxlan'> } | null {
    for (const h of this.topology.hosts.keys()) {
      if (h === host) continue;
      if (dev.kind === 'uplink') {
        const up = this.all(h, 'uplink').find((u) => u.spec.vlanId === dev.spec.vlanId);
        const p = up && this.portsOf(h).find((x) => x.spec.bridge === up.spec.master && match(x));
        if (up && p) return { host: h, port: p, dev: up };
      } else {
        const p = this.vxlanHolder(h, dev.spec.vni, match);
        if (p) return { host: h, port: p, dev: this.get(h, 'vxlan', dev.spec.name)! };
      }
    }
    return null;
  }

  private vxlanHolder(host: string, vni: number, match: (p: Port) => boolean): Port | undefined {
    const vx = this.all(host, 'vxlan').find((v) => v.spec.vni === vni);
    return vx && this.portsOf(host).find((p) => p.spec.bridge === vx.spec.master && match(p));
  }

  private deliver(host: string, p: Port, dstIp: string): Outcome {
    const inst = this.topology.instances.get(p.spec.instance);
    if (inst) this.runPolicy('ingress', host, inst, this.srcIp, dstIp);
    this.hop(
      'deliver',
      host,
      `delivered to ${p.spec.name} (${p.spec.address}) on ${p.spec.veth} on host ${this.hostName(host)}`,
      [p.key],
    );
    return { ok: true, instance: inst ?? null, host };
  }
}
