import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql, startController, type TestController } from '../support/controller.js';

let t: TestController;
let h1: any, h2: any, h3: any;
beforeAll(async () => {
  t = await startController();
  h1 = await t.newHost({ underlayIp: '192.0.2.11' });
  h2 = await t.newHost({ underlayIp: '192.0.2.12' });
  h3 = await t.newHost({ underlayIp: '192.0.2.13' });
});
afterAll(() => t.close());

type Res = { kind: string; key: string; spec: any };
const state = async (h: any): Promise<{ revision: number; resources: Res[] }> =>
  (await t.get(`/hosts/${h.name}/desired-state`).expect(200)).body;
const ofKind = (rs: Res[], kind: string) => rs.filter((r) => r.kind === kind);
const hostsOf = async (revision: number) =>
  (
    await sql<{ hosts: string[] }>(
      t.databaseUrl,
      'SELECT hosts FROM revisions WHERE revision = $1',
      [revision],
    )
  )[0].hosts.sort();

describe('desired state through the API', () => {
  it('overlay/vxlan: FDB and neighbour entries of remote instances point at their host', async () => {
    const blue = await t.newNetwork('overlay', '10.10.0.0/24');
    const web1 = await t.newInstance(blue.name, h1.name);
    const web2 = await t.newInstance(blue.name, h2.name);
    // creating web2 changes the state of h1 (peer) and h2 (local), not h3
    expect(await hostsOf(web2.revision)).toEqual([h1.id, h2.id].sort());

    const s1 = await state(h1);
    expect(s1.revision).toBeGreaterThanOrEqual(web2.revision);
    const vx = ofKind(s1.resources, 'vxlan');
    expect(vx).toHaveLength(1);
    expect(vx[0].spec).toMatchObject({
      vni: blue.vni,
      local: '192.0.2.11',
      dstport: 4789,
      dev: 'eth0',
      learning: false,
    });
    const fdb = ofKind(s1.resources, 'fdb').map((r) => r.spec);
    expect(fdb).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ mac: web2.mac, dst: '192.0.2.12' }),
        expect.objectContaining({ mac: '00:00:00:00:00:00', dst: '192.0.2.12' }),
      ]),
    );
    // flood list only toward hosts that have instances of the network
    expect(fdb.filter((f) => f.mac === '00:00:00:00:00:00').map((f) => f.dst)).toEqual([
      '192.0.2.12',
    ]);
    expect(ofKind(s1.resources, 'neigh').map((r) => r.spec)).toEqual(
      expect.arrayContaining([expect.objectContaining({ ip: web2.ip, lladdr: web2.mac })]),
    );
    const port = ofKind(s1.resources, 'port').map((r) => r.spec);
    expect(port).toEqual([
      expect.objectContaining({
        instance: web1.id,
        mac: web1.mac,
        address: `${web1.ip}/24`,
        mtu: 1450,
      }),
    ]);
    // nothing of web1 itself in h1's FDB toward the underlay
    expect(fdb.some((f) => f.mac === web1.mac)).toBe(false);
    // resources come in apply order: devices before ports and FDB entries
    const ranks = s1.resources.map((r) =>
      ['sysctl', 'bridge', 'tunnel'].includes(r.kind)
        ? 0
        : ['uplink', 'vxlan'].includes(r.kind)
          ? 1
          : ['port', 'address'].includes(r.kind)
            ? 2
            : ['fdb', 'neigh', 'route'].includes(r.kind)
              ? 3
              : 4,
    );
    expect([...ranks].sort((a, b) => a - b)).toEqual(ranks);

    expect((await state(h3)).resources).toEqual([]);
  });

  it('mobility: a move rewrites exactly the moved instance entries everywhere', async () => {
    const net = await t.newNetwork('fabric', '10.11.0.0/24');
    const a = await t.newInstance(net.name, h1.name);
    const b = await t.newInstance(net.name, h2.name);
    const moved = await t.patch(`/instances/${b.name}`, { host: h3.name }).expect(200);
    expect(await hostsOf(moved.body.revision)).toEqual([h1.id, h2.id, h3.id].sort());
    const s1 = await state(h1);
    const entries = ofKind(s1.resources, 'fdb').filter((r) => r.spec.mac === b.mac);
    expect(entries.length).toBeGreaterThan(0);
    expect(entries.filter((r) => r.spec.dst !== null).map((r) => r.spec.dst)).toEqual([
      '192.0.2.13',
    ]);
    // h2 keeps nothing of this network; h3 now has the port and a's entries
    const s2 = await state(h2);
    expect(
      s2.resources.filter(
        (r) => JSON.stringify(r.spec).includes(b.mac) || JSON.stringify(r.spec).includes(a.mac),
      ),
    ).toEqual([]);
    const s3 = await state(h3);
    expect(ofKind(s3.resources, 'port').map((r) => r.spec.mac)).toEqual([b.mac]);
    expect(
      ofKind(s3.resources, 'fdb').some((r) => r.spec.mac === a.mac && r.spec.dst === '192.0.2.11'),
    ).toBe(true);
  });

  it('routed/static: every host routes the other hosts blocks via their underlay IP', async () => {
    const pods = await t.newNetwork('routed', '10.244.0.0/16');
    await t.newInstance(pods.name, h1.name);
    await t.newInstance(pods.name, h2.name);
    const blocks = await sql<{ cidr: string; host_id: string }>(
      t.databaseUrl,
      'SELECT cidr::text, host_id FROM host_blocks WHERE network_id = $1',
      [pods.id],
    );
    const blockOf = (h: any) => blocks.find((b) => b.host_id === h.id)!.cidr;
    const r1 = ofKind((await state(h1)).resources, 'route').map((r) => r.spec);
    expect(r1).toEqual(
      expect.arrayContaining([expect.objectContaining({ dst: blockOf(h2), via: '192.0.2.12' })]),
    );
    expect(r1.some((r) => r.dst === blockOf(h1))).toBe(false);
    const s1 = await state(h1);
    expect(ofKind(s1.resources, 'sysctl').map((r) => r.spec)).toEqual(
      expect.arrayContaining([{ name: 'net.ipv4.ip_forward', value: '1' }]),
    );
  });

  it('incremental state equals a full recompute, and a second replica follows the log', async () => {
    const r = await t.post('/routers', { name: 'edge', networks: [] }).expect(201);
    const red = await t.newNetwork('overlay', '10.50.0.0/24');
    const green = await t.newNetwork('vlan', '10.51.0.0/24');
    await t.patch(`/routers/${r.body.name}`, { attach: [red.name, green.name] }).expect(200);
    await t.newInstance(red.name, h1.name);
    await t.newInstance(green.name, h2.name);
    // the second replica computes everything from the database at start (full recompute)
    const replica = await startController({ databaseUrl: t.databaseUrl });
    try {
      for (const h of [h1, h2, h3]) {
        const a = await state(h);
        const b = (await replica.get(`/hosts/${h.name}/desired-state`).expect(200)).body;
        expect(b).toEqual(a);
      }
      // a change through this controller reaches the replica's engine through the log
      const late = await t.newInstance(green.name, h3.name);
      const b3 = (await replica.get(`/hosts/${h3.name}/desired-state`).expect(200)).body;
      expect(b3.revision).toBe(late.revision);
      expect(b3.resources).toEqual((await state(h3)).resources);
      expect(b3.resources.some((x: Res) => x.kind === 'port' && x.spec.mac === late.mac)).toBe(
        true,
      );
      // and a change through the replica reaches this one
      const other = await replica
        .post('/instances', { name: 'via-replica', network: red.name, host: h3.name })
        .expect(201);
      expect(
        (await state(h1)).resources.some((x) => x.kind === 'fdb' && x.spec.mac === other.body.mac),
      ).toBe(true);
    } finally {
      await replica.close();
    }
  });

  it('host changes reach every host they affect: route reflector label, underlay address', async () => {
    const pods = await t.newNetwork('routed', '10.245.0.0/16', { routing: 'bgp' });
    for (const h of [h1, h2, h3]) await t.newInstance(pods.name, h.name);
    const peers = async (h: any) =>
      ofKind((await state(h)).resources, 'bgp')[0].spec.peers.map(
        (p: any) => `${p.address}${p.rrClient ? '+rr' : ''}`,
      );
    expect(await peers(h2)).toEqual(['192.0.2.11', '192.0.2.13']); // full mesh
    const rr = await t
      .patch(`/hosts/${h1.name}`, { labels: { 'lattice.io/route-reflector': 'true' } })
      .expect(200);
    expect(rr.body.labels).toEqual({ 'lattice.io/route-reflector': 'true' });
    expect(await peers(h2)).toEqual(['192.0.2.11']); // only the reflector
    expect(await peers(h1)).toEqual(['192.0.2.12+rr', '192.0.2.13+rr']);
    await t.patch(`/hosts/${h1.name}`, { labels: {} }).expect(200);
    expect(await peers(h2)).toEqual(['192.0.2.11', '192.0.2.13']);

    const blue = await t.newNetwork('overlay', '10.60.0.0/24');
    await t.newInstance(blue.name, h1.name);
    const far = await t.newInstance(blue.name, h3.name);
    const moved = await t.patch(`/hosts/${h3.name}`, { underlayIp: '192.0.2.33' }).expect(200);
    expect(moved.body.underlayIp).toBe('192.0.2.33');
    expect(await hostsOf(moved.body.revision)).toEqual(expect.arrayContaining([h1.id, h3.id]));
    const fdb = ofKind((await state(h1)).resources, 'fdb').map((r) => r.spec);
    expect(fdb.filter((f) => f.mac === far.mac).map((f) => f.dst)).toEqual(['192.0.2.33']);
    expect((await state(h3)).resources.find((r) => r.kind === 'vxlan')?.spec.local).toBe(
      '192.0.2.33',
    );
    await t.patch(`/hosts/${h3.name}`, { underlayIp: '192.0.2.13' }).expect(200);
  });

  it('deleting everything empties every host state', async () => {
    for (const i of (await t.get('/instances?limit=1000').expect(200)).body.items)
      await t.del(`/instances/${i.id}`).expect(200);
    for (const h of [h1, h2, h3]) expect((await state(h)).resources).toEqual([]);
  });

  it('answers 404 for an unknown host', async () => {
    await t.get('/hosts/nope/desired-state').expect(404);
  });
});
