import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { vethName, vxlanName } from '../../libs/engine/src/names.js';
import { run } from '../../lab/src/shell.js';
import {
  agentErrors,
  create,
  describeLab,
  eventually,
  expectMesh,
  expectReachable,
  expectUnreachable,
  fdbJson,
  hostNs,
  instanceNs,
  ipJson,
  ping,
  startLab,
  stopLab,
  type Lab,
} from './lab-support.js';

/** Routers between networks, instance mobility and drift repair, with real packets. */
let lab: Lab | undefined;
const L = () => lab!;

async function inst(name: string, network: string, host: string, extra = {}) {
  return (await create(L(), '/instances', { name, network, host, ...extra })) as {
    id: string;
    name: string;
    ip: string;
    mac: string;
  };
}

async function hasLink(host: string, dev: string): Promise<boolean> {
  return (await run(['ip', '-n', hostNs(L(), host), 'link', 'show', dev])).code === 0;
}

describeLab('real packets: routers, mobility, drift', () => {
  beforeAll(async () => {
    lab = await startLab(3);
  }, 60_000);

  afterAll(async () => {
    await stopLab(lab);
  }, 60_000);

  it('routers: two attached networks talk across hosts; a network attached to none reaches neither', async () => {
    await create(L(), '/networks', { name: 'front', model: 'overlay', cidr: '10.10.0.0/24' });
    await create(L(), '/networks', { name: 'back', model: 'vlan', cidr: '10.11.0.0/24' });
    await create(L(), '/networks', {
      name: 'other',
      model: 'routed',
      routing: 'static',
      cidr: '10.12.0.0/16',
    });
    await create(L(), '/routers', { name: 'r1', networks: ['front', 'back'] });
    const f1 = await inst('front1', 'front', 'h1');
    const f3 = await inst('front3', 'front', 'h3');
    const b2 = await inst('back2', 'back', 'h2');
    const o1 = await inst('other1', 'other', 'h1');
    const o2 = await inst('other2', 'other', 'h2');
    // routed between the attached networks, in both directions and across hosts
    await expectReachable(L(), f1.name, b2.ip);
    await expectReachable(L(), b2.name, f1.ip);
    await expectReachable(L(), f3.name, b2.ip);
    await expectReachable(L(), b2.name, f3.ip);
    await expectReachable(L(), o1.name, o2.ip); // the third network works in itself
    // …and is isolated from both, even from instances on the same host (ip_forward is on)
    await expectUnreachable(L(), o1.name, f1.ip);
    await expectUnreachable(L(), o2.name, b2.ip);
    await expectUnreachable(L(), o1.name, b2.ip);
    await expectUnreachable(L(), f1.name, o1.ip);
    await expectUnreachable(L(), b2.name, o2.ip);
  });

  it('mobility: a moved instance keeps IP and MAC and is reachable from every peer', async () => {
    await create(L(), '/networks', { name: 'mob', model: 'overlay', cidr: '10.20.0.0/24' });
    const m1 = await inst('mob1', 'mob', 'h1');
    const m2 = await inst('mob2', 'mob', 'h2');
    const m3 = await inst('mob3', 'mob', 'h3');
    await expectMesh(L(), [m1, m2, m3]);
    const veth = vethName(m3.id);
    const t0 = Date.now();
    const moved = await L().t.patch(`/instances/${m3.name}`, { host: 'h1' });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ host: 'h1', ip: m3.ip, mac: m3.mac });
    // The first echo answered by the instance at its new place: its port is on h1, not h3.
    const firstMs = await eventually(
      `${m3.name} answers on h1`,
      async () =>
        (await hasLink('h1', veth)) &&
        !(await hasLink('h3', veth)) &&
        (await ping(L(), m2.name, m3.ip, { waitS: 0.2 })),
      15_000,
      10,
    );
    console.log(`mobility: PATCH → first successful ping from a peer: ${firstMs} ms`);
    await expectMesh(L(), [m1, m2, m3]);
    const stableMs = Date.now() - t0;
    const eth0 = (await run(['ip', '-n', instanceNs(L(), m3.name), '-j', 'addr', 'show', 'eth0']))
      .stdout;
    const link = JSON.parse(eth0)[0];
    expect(link.address).toBe(m3.mac);
    expect(link.addr_info.map((a: any) => a.local)).toEqual([m3.ip]);
    console.log(`mobility: PATCH → reachable from every peer: ${stableMs} ms`);
    // h3 keeps no trace of it; the others point at h1 now
    const vx = vxlanName((await L().t.get('/networks/mob').expect(200)).body.vni);
    const vteps = (await fdbJson(L(), 'h2')).filter(
      (e) => e.mac === m3.mac && e.ifname === vx && e.dst !== undefined,
    );
    expect(vteps.map((e) => e.dst)).toEqual(['192.0.2.11']);
  }, 60_000);

  it('drift: a route deleted by hand is back within the drift interval, and so is reachability', async () => {
    const a = await inst('other3', 'other', 'h3');
    await expectReachable(L(), 'other1', a.ip);
    const block = (await ipJson(L(), 'h1', ['route', 'show', 'proto', '76'])).find(
      (r: any) => r.gateway === '192.0.2.13',
    ).dst as string;
    const del = await run(['ip', '-n', hostNs(L(), 'h1'), 'route', 'del', block, 'proto', '76']);
    expect(del.code).toBe(0);
    const backMs = await eventually(
      `route ${block} back on h1`,
      async () =>
        (await ipJson(L(), 'h1', ['route', 'show', 'proto', '76'])).some(
          (r: any) => r.dst === block,
        ),
      5000,
      20,
    );
    console.log(`drift: route ${block} repaired after ${backMs} ms (drift interval 1000 ms)`);
    expect(backMs).toBeLessThan(3000);
    await expectReachable(L(), 'other1', a.ip);
  });

  it('drift: a fabric FDB entry deleted by hand is back, and so is reachability', async () => {
    const net = await create(L(), '/networks', {
      name: 'fab',
      model: 'fabric',
      cidr: '10.30.0.0/24',
    });
    const x1 = await inst('fab1', 'fab', 'h1');
    const x2 = await inst('fab2', 'fab', 'h2');
    await expectMesh(L(), [x1, x2]);
    const vx = vxlanName(net.vni);
    const h1 = hostNs(L(), 'h1');
    const del = await run([
      'bridge',
      '-n',
      h1,
      'fdb',
      'del',
      x2.mac,
      'dev',
      vx,
      'dst',
      '192.0.2.12',
      'self',
    ]);
    expect(del.code).toBe(0);
    const present = async () =>
      (await fdbJson(L(), 'h1')).some((e) => e.mac === x2.mac && e.dst === '192.0.2.12');
    const backMs = await eventually(`fdb ${x2.mac} back on h1`, present, 5000, 20);
    console.log(`drift: fdb ${x2.mac} dst 192.0.2.12 repaired after ${backMs} ms`);
    expect(backMs).toBeLessThan(3000);
    await expectReachable(L(), x1.name, x2.ip);
    const hosts = (await L().t.get('/hosts').expect(200)).body.items as any[];
    // the controller heard about it (the agent reports drift it repaired)
    expect(hosts.every((h) => h.agent.connected)).toBe(true);
  });

  it('no agent reports errors', async () => {
    expect(await agentErrors(L())).toEqual([]);
  });
});
