import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { bridgeName, vxlanName } from '../../libs/engine/src/names.js';
import {
  agentErrors,
  create,
  describeLab,
  eventually,
  expectMesh,
  expectReachable,
  expectUnreachable,
  fdbJson,
  ipJson,
  ping,
  startLab,
  stopLab,
  type Lab,
} from './lab-support.js';

/**
 * Every networking model with real packets: one lab of three hosts, one network per model
 * (several models side by side, as in production), pings between instance namespaces.
 */
let lab: Lab | undefined;
const L = () => lab!;
const HOSTS = ['h1', 'h2', 'h3'];

/** Instances `<base>1..3` of `network`, one per host (or on the given hosts). */
async function spread(network: string, base: string, hosts = HOSTS) {
  const out: any[] = [];
  for (const [i, host] of hosts.entries()) {
    out.push(await create(L(), '/instances', { name: `${base}${i + 1}`, network, host }));
  }
  return out as { name: string; ip: string; mac: string; host: string }[];
}

describeLab('real packets: every networking model', () => {
  beforeAll(async () => {
    lab = await startLab(3);
  }, 60_000);

  afterAll(async () => {
    await stopLab(lab);
  }, 60_000);

  it('bridge: instances on one host talk; the same network on another host is unreachable', async () => {
    await create(L(), '/networks', { name: 'isl', model: 'bridge', cidr: '10.1.0.0/24' });
    const [a, b, c] = await spread('isl', 'isl', ['h1', 'h1', 'h2']);
    await expectReachable(L(), a.name, b.ip);
    await expectReachable(L(), b.name, a.ip);
    await expectUnreachable(L(), a.name, c.ip);
    await expectUnreachable(L(), c.name, a.ip);
  });

  it('vlan: three hosts in one VLAN talk; another VLAN with the same subnet is unreachable', async () => {
    const red = await create(L(), '/networks', { name: 'red', model: 'vlan', cidr: '10.2.0.0/24' });
    const blue = await create(L(), '/networks', {
      name: 'blue',
      model: 'vlan',
      cidr: '10.2.0.0/24',
    });
    expect([red.vlanId, blue.vlanId].every((v: number) => v >= 100 && v <= 109)).toBe(true);
    const reds = await spread('red', 'red');
    await expectMesh(L(), reds);
    // blue reuses the subnet with addresses red does not have, on the same hosts
    const b1 = await create(L(), '/instances', {
      name: 'blue1',
      network: 'blue',
      host: 'h2',
      ip: '10.2.0.100',
    });
    const b2 = await create(L(), '/instances', {
      name: 'blue2',
      network: 'blue',
      host: 'h3',
      ip: '10.2.0.101',
    });
    await expectReachable(L(), 'blue2', b1.ip); // blue works…
    await expectUnreachable(L(), 'red1', b1.ip); // …but is not red
    await expectUnreachable(L(), 'red3', b2.ip); // not even from the same host
    await expectUnreachable(L(), 'blue1', reds[0].ip);
  });

  it('routed static (host-gw): instances on different hosts talk through per-host blocks', async () => {
    await create(L(), '/networks', {
      name: 'hostgw',
      model: 'routed',
      routing: 'static',
      cidr: '10.3.0.0/16',
    });
    const pods = await spread('hostgw', 'gw');
    await expectMesh(L(), pods);
    const routes = await ipJson(L(), 'h1', ['route', 'show', 'proto', '76']);
    expect(routes.map((r: any) => r.gateway).sort()).toEqual(['192.0.2.12', '192.0.2.13']);
  });

  it('routed bgp: BIRD in every host announces its blocks; routes arrive as proto bird', async () => {
    await create(L(), '/networks', {
      name: 'calico',
      model: 'routed',
      routing: 'bgp',
      cidr: '10.4.0.0/16',
    });
    const t0 = Date.now();
    const pods = await spread('calico', 'bgp');
    // Each host learns the other two hosts' blocks from BGP.
    for (const h of HOSTS) {
      await eventually(
        `${h} has two BGP routes into 10.4.0.0/16`,
        async () => {
          const routes = await ipJson(L(), h, ['route', 'show', 'proto', 'bird']);
          return routes.filter((r: any) => String(r.dst).startsWith('10.4.')).length === 2;
        },
        20_000,
        200,
      );
    }
    console.log(`bgp: routes on 3 hosts ${Date.now() - t0} ms after the first instance`);
    const h1 = await ipJson(L(), 'h1', ['route', 'show', 'proto', 'bird']);
    expect(h1.map((r: any) => r.gateway).sort()).toEqual(['192.0.2.12', '192.0.2.13']);
    await expectMesh(L(), pods);
  }, 60_000);

  it('overlay vxlan: three hosts talk; DF pings fit the MTU the controller set, one byte more does not', async () => {
    const net = await create(L(), '/networks', {
      name: 'tenant',
      model: 'overlay',
      cidr: '10.5.0.0/24',
    });
    expect(net.instanceMtu).toBe(1450);
    const vms = await spread('tenant', 'vm');
    await expectMesh(L(), vms);
    const payload = net.instanceMtu - 28; // IPv4 + ICMP headers
    for (const [from, to] of [
      [vms[0], vms[1]],
      [vms[2], vms[0]],
    ]) {
      expect(await ping(L(), from.name, to.ip, { df: true, size: payload })).toBe(true);
      expect(await ping(L(), from.name, to.ip, { df: true, size: payload + 1 })).toBe(false);
    }
    // The encapsulated frame (1450 + 50) is exactly the underlay MTU: the DF ping above
    // crossed the underlay at 1500 bytes.
    const vx = (await ipJson(L(), 'h1', ['link', 'show', vxlanName(net.vni)]))[0];
    expect(vx.mtu).toBe(1450);
  });

  it('fabric: three hosts talk with nothing learned; deleting an instance makes exactly it unreachable', async () => {
    const net = await create(L(), '/networks', {
      name: 'fab',
      model: 'fabric',
      cidr: '10.6.0.0/24',
    });
    const fab = await spread('fab', 'fab');
    await expectMesh(L(), fab);
    const br = bridgeName(net.id);
    const vx = vxlanName(net.vni);
    for (const h of HOSTS) {
      const links = await ipJson(L(), h, ['link', 'show']);
      const ports = new Set<string>([
        br,
        ...links.filter((l: any) => l.master === br).map((l: any) => l.ifname as string),
      ]);
      expect(ports.has(vx)).toBe(true);
      // Dynamic (learned) entries: in the bridge table, neither permanent nor static.
      const learned = (await fdbJson(L(), h)).filter(
        (e) => ports.has(e.ifname) && e.master && !e.state,
      );
      expect({ host: h, learned }).toEqual({ host: h, learned: [] });
    }
    const gone = fab[2];
    await L().t.del(`/instances/${gone.name}?wait=applied`).expect(200);
    await expectUnreachable(L(), fab[0].name, gone.ip);
    await expectUnreachable(L(), fab[1].name, gone.ip);
    await expectReachable(L(), fab[0].name, fab[1].ip);
    await expectReachable(L(), fab[1].name, fab[0].ip);
    // …and its forwarding information is withdrawn everywhere (no flood fallback exists).
    for (const h of ['h1', 'h2']) {
      const left = (await fdbJson(L(), h)).filter((e) => e.mac === gone.mac);
      expect({ host: h, left }).toEqual({ host: h, left: [] });
    }
  });

  it.skip('overlay ipip and gre: not carried here — this kernel has no ipip or gre device type (DATAPLANE.md); the engine computes their state, golden tests cover it', () => {
    // Documented skip: `ip link add x type ipip` / `type gre` fail with "Unknown device type".
  });

  it('no agent reports errors', async () => {
    expect(await agentErrors(L())).toEqual([]);
  });
});
