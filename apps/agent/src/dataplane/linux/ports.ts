/**
 * Instance attachment (`port` resources) in lab mode: every instance is a network namespace
 * of its own, `<instanceNetnsPrefix>-<port name>`, plugged into its network's bridge by a
 * veth pair (host end `spec.veth`, instance end `eth0`).
 *
 * Pure: rendering and the comparison of what an instance namespace holds with its spec.
 */
import type { UpsertOp } from '../../../../../libs/engine/src/diff.js';
import type { PortSpec } from '../../../../../libs/engine/src/resources.js';
import { portFlagsLine, type RenderContext, type Step } from './render.js';

/** The instance's interface inside its namespace. */
export const INSTANCE_DEV = 'eth0';

export function instanceNetns(prefix: string, spec: Pick<PortSpec, 'name'>): string {
  return `${prefix}-${spec.name}`;
}

const inst = (ns: string, line: string): Step => ({ stage: 'instance', ns, line });

export function renderPortUpsert(spec: PortSpec, op: UpsertOp, ctx: RenderContext): Step[] {
  const ns = instanceNetns(ctx.instanceNetnsPrefix, spec);
  const nsExists = ctx.namespaces.has(ns);
  const vethExists = ctx.links.has(spec.veth);
  const create = !vethExists || op === 'replace';
  const steps: Step[] = [];
  if (!nsExists) {
    steps.push({ stage: 'netns', line: `netns add ${ns}` });
  }
  if (create) {
    if (nsExists) {
      // A left-over eth0 (its host end gone) would make the peer creation fail.
      steps.push({
        stage: 'netns',
        line: `netns exec ${ns} ip link del ${INSTANCE_DEV}`,
        optional: true,
      });
    }
    // New addresses stay tentative for 1–2 s under IPv6 DAD and instances only use IPv4
    // here: disable IPv6 before eth0 exists, so it inherits `default`.
    steps.push({
      stage: 'netns',
      line:
        `netns exec ${ns} sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 ` +
        `net.ipv6.conf.default.disable_ipv6=1`,
    });
    if (vethExists) steps.push({ stage: 'ip', line: `link del ${spec.veth}` });
    steps.push({
      stage: 'ip',
      line: `link add ${spec.veth} mtu ${spec.mtu} type veth peer name ${INSTANCE_DEV} netns ${ns}`,
    });
  }
  steps.push(
    { stage: 'ip', line: `link set ${spec.veth} master ${spec.bridge} mtu ${spec.mtu} up` },
    { stage: 'bridge', line: portFlagsLine(spec.veth, spec.flags) },
  );
  if (spec.flags?.learning ?? true) {
    // A moved instance: the bridge may still hold what it learned while the instance lived
    // on another host (its MAC behind the VXLAN device or the uplink), and would send frames
    // for it back where they came from until the instance speaks. Point the entry at the
    // new port, as a hypervisor's announce after a migration does; it ages like a learned
    // one. Drift checks re-point it when late frames from the old place taught it again.
    steps.push({
      stage: 'bridge',
      line: `fdb replace ${spec.mac} dev ${spec.veth} master dynamic`,
      optional: true,
    });
  }
  steps.push(
    inst(ns, 'link set lo up'),
    inst(ns, `link set ${INSTANCE_DEV} address ${spec.mac} mtu ${spec.mtu} up`),
  );
  // Replace semantics: an update must not leave a previous address behind.
  if (!create) steps.push(inst(ns, `addr flush dev ${INSTANCE_DEV} scope global`));
  steps.push(inst(ns, `addr replace ${spec.address} dev ${INSTANCE_DEV}`));
  if (spec.gateway !== null) {
    steps.push(inst(ns, `route replace default via ${spec.gateway} dev ${INSTANCE_DEV}`));
  } else if (!create) {
    steps.push({ ...inst(ns, 'route del default'), optional: true });
  }
  return steps;
}

/** Deleting a port unplugs the instance: the veth pair, then the instance namespace. */
export function renderPortDelete(spec: PortSpec, ctx: RenderContext): Step[] {
  const ns = instanceNetns(ctx.instanceNetnsPrefix, spec);
  return [
    ...(ctx.links.has(spec.veth) ? [{ stage: 'ip' as const, line: `link del ${spec.veth}` }] : []),
    ...(ctx.namespaces.has(ns) ? [{ stage: 'netns' as const, line: `netns del ${ns}` }] : []),
  ];
}

/** `ip -n <ns> -j -batch -` lines that read an instance namespace back. */
export const INSTANCE_READ_LINES = [`addr show dev ${INSTANCE_DEV}`, 'route show default'];

interface AddrJson {
  readonly address?: string;
  readonly mtu?: number;
  readonly flags?: readonly string[];
  readonly addr_info?: readonly { family: string; local: string; prefixlen: number }[];
}

interface RouteJson {
  readonly dst?: string;
  readonly gateway?: string;
  readonly dev?: string;
}

/**
 * What differs between an instance namespace and its port spec, from the two JSON outputs
 * of `INSTANCE_READ_LINES` (null: the namespace or eth0 is missing). Empty when in sync.
 */
export function diffPortInstance(
  spec: PortSpec,
  addrs: readonly AddrJson[] | null,
  routes: readonly RouteJson[] | null,
): string[] {
  const eth0 = addrs?.[0];
  if (!eth0) return [`${INSTANCE_DEV} missing in the instance namespace`];
  const out: string[] = [];
  if (eth0.address?.toLowerCase() !== spec.mac.toLowerCase()) {
    out.push(`${INSTANCE_DEV} MAC ${eth0.address} != ${spec.mac}`);
  }
  if (eth0.mtu !== spec.mtu) out.push(`${INSTANCE_DEV} MTU ${eth0.mtu} != ${spec.mtu}`);
  if (!eth0.flags?.includes('UP')) out.push(`${INSTANCE_DEV} down`);
  const global = (eth0.addr_info ?? []).filter((a) => a.family === 'inet' || a.family === 'inet6');
  const want = spec.address;
  const have = global.map((a) => `${a.local}/${a.prefixlen}`).filter((a) => !a.startsWith('fe80:'));
  if (!have.includes(want)) out.push(`address ${want} missing`);
  for (const a of have) if (a !== want) out.push(`extra address ${a}`);
  const gw = (routes ?? []).find((r) => r.dst === 'default')?.gateway ?? null;
  if (gw !== spec.gateway)
    out.push(`default route via ${gw ?? 'none'} != ${spec.gateway ?? 'none'}`);
  return out;
}
