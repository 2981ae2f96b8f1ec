import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startController, type TestController } from '../support/controller.js';

let t: TestController;
beforeAll(async () => {
  t = await startController({
    env: { LATTICE_VLAN_POOL: '100-104', LATTICE_VNI_POOL: '5000-5999' },
  });
});
afterAll(() => t.close());

const fields = (res: { body: { details?: { field: string }[] } }) =>
  (res.body.details ?? []).map((d) => d.field).sort();

describe('networks: every model with its parameters and defaults', () => {
  it('bridge: a plain subnet, first usable address as gateway', async () => {
    const res = await t
      .post('/networks', { name: 'br-a', model: 'bridge', cidr: '10.1.0.0/24' })
      .expect(201);
    expect(res.body).toMatchObject({
      model: 'bridge',
      cidr: '10.1.0.0/24',
      gateway: '10.1.0.1',
      mtu: 1500,
      instanceMtu: 1500,
      vlanId: null,
      vni: null,
      encapsulation: null,
      routing: null,
      blockPrefixLen: null,
      transport: null,
      routable: false,
    });
    expect(res.body.revision).toBeGreaterThan(0);
  });

  it('vlan: VLAN id from the pool, or the one asked for', async () => {
    const a = await t
      .post('/networks', { name: 'vl-a', model: 'vlan', cidr: '10.2.0.0/24' })
      .expect(201);
    expect(a.body.vlanId).toBe(100);
    const b = await t
      .post('/networks', { name: 'vl-b', model: 'vlan', cidr: '10.2.0.0/24', vlanId: 3000 })
      .expect(201);
    expect(b.body.vlanId).toBe(3000);
    const dup = await t
      .post('/networks', { name: 'vl-c', model: 'vlan', cidr: '10.2.0.0/24', vlanId: 3000 })
      .expect(409);
    expect(dup.body.message).toContain('VLAN');
  });

  it('routed: static by default, /26 blocks, routable, no custom gateway', async () => {
    const r = await t
      .post('/networks', { name: 'pods', model: 'routed', cidr: '10.244.0.0/16' })
      .expect(201);
    expect(r.body).toMatchObject({
      routing: 'static',
      blockPrefixLen: 26,
      routable: true,
      gateway: '10.244.0.1',
      vlanId: null,
      vni: null,
    });
    const bgp = await t
      .post('/networks', {
        name: 'pods-bgp',
        model: 'routed',
        routing: 'bgp',
        blockPrefixLen: 24,
        cidr: '10.245.0.0/16',
      })
      .expect(201);
    expect(bgp.body).toMatchObject({ routing: 'bgp', blockPrefixLen: 24 });
    const gw = await t
      .post('/networks', {
        name: 'pods-gw',
        model: 'routed',
        cidr: '10.246.0.0/16',
        gateway: '10.246.0.9',
      })
      .expect(400);
    expect(fields(gw)).toEqual(['gateway']);
  });

  it('overlay: vxlan with a VNI by default; ipip/gre are block-based with no VNI', async () => {
    const vx = await t
      .post('/networks', { name: 'ov-vx', model: 'overlay', cidr: '10.3.0.0/24', mtu: 9000 })
      .expect(201);
    expect(vx.body).toMatchObject({
      encapsulation: 'vxlan',
      vni: 5000,
      instanceMtu: 8950,
      routable: false,
      blockPrefixLen: null,
    });
    const ipip = await t
      .post('/networks', {
        name: 'ov-ipip',
        model: 'overlay',
        encapsulation: 'ipip',
        cidr: '10.4.0.0/16',
      })
      .expect(201);
    expect(ipip.body).toMatchObject({
      vni: null,
      blockPrefixLen: 26,
      instanceMtu: 1480,
      routable: true,
    });
    const gre = await t
      .post('/networks', {
        name: 'ov-gre',
        model: 'overlay',
        encapsulation: 'gre',
        cidr: '10.5.0.0/16',
      })
      .expect(201);
    expect(gre.body.instanceMtu).toBe(1476);
    const bad = await t
      .post('/networks', {
        name: 'ov-bad',
        model: 'overlay',
        encapsulation: 'gre',
        vni: 7,
        cidr: '10.6.0.0/16',
      })
      .expect(400);
    expect(fields(bad)).toEqual(['vni']);
  });

  it('fabric: vxlan transport with a VNI, or vlan transport with a VLAN id', async () => {
    const vx = await t
      .post('/networks', { name: 'fab-vx', model: 'fabric', cidr: '10.7.0.0/24' })
      .expect(201);
    expect(vx.body).toMatchObject({
      transport: 'vxlan',
      vni: 5001,
      vlanId: null,
      instanceMtu: 1450,
    });
    const vl = await t
      .post('/networks', {
        name: 'fab-vl',
        model: 'fabric',
        transport: 'vlan',
        cidr: '10.8.0.0/24',
      })
      .expect(201);
    expect(vl.body).toMatchObject({ transport: 'vlan', vni: null, vlanId: 101, instanceMtu: 1500 });
  });

  it('refuses parameters that do not belong to the model, naming each', async () => {
    const res = await t
      .post('/networks', {
        name: 'br-x',
        model: 'bridge',
        cidr: '10.9.0.0/24',
        vlanId: 5,
        vni: 9,
        encapsulation: 'vxlan',
        routing: 'bgp',
        blockPrefixLen: 26,
        transport: 'vlan',
      })
      .expect(400);
    expect(fields(res)).toEqual([
      'blockPrefixLen',
      'encapsulation',
      'routing',
      'transport',
      'vlanId',
      'vni',
    ]);
  });

  it('refuses bad shapes: names, CIDRs, gateways, VLAN and VNI ranges, unknown model', async () => {
    const res = await t
      .post('/networks', {
        name: '-x',
        model: 'mesh',
        cidr: '10.0.0.1/24',
        gateway: 'nope',
        vlanId: 4095,
        vni: 16777216,
        mtu: 100,
      })
      .expect(400);
    expect(fields(res)).toEqual(['cidr', 'gateway', 'model', 'mtu', 'name', 'vlanId', 'vni']);
    expect(
      fields(
        await t
          .post('/networks', { name: 'tiny', model: 'bridge', cidr: '10.9.0.0/31' })
          .expect(400),
      ),
    ).toEqual(['cidr']);
    expect(
      fields(
        await t
          .post('/networks', {
            name: 'gw-out',
            model: 'bridge',
            cidr: '10.9.0.0/24',
            gateway: '10.9.1.1',
          })
          .expect(400),
      ),
    ).toEqual(['gateway']);
    expect(
      fields(
        await t
          .post('/networks', {
            name: 'gw-bc',
            model: 'bridge',
            cidr: '10.9.0.0/24',
            gateway: '10.9.0.255',
          })
          .expect(400),
      ),
    ).toEqual(['gateway']);
    expect(
      fields(
        await t
          .post('/networks', { name: 'loop', model: 'bridge', cidr: '127.0.0.0/8' })
          .expect(400),
      ),
    ).toEqual(['cidr']);
    expect(
      fields(
        await t
          .post('/networks', {
            name: 'blk',
            model: 'routed',
            cidr: '10.9.0.0/24',
            blockPrefixLen: 20,
          })
          .expect(400),
      ),
    ).toEqual(['blockPrefixLen']);
    expect(
      fields(
        await t
          .post('/networks', { name: 'vlan0', model: 'vlan', cidr: '10.9.0.0/24', vlanId: 0 })
          .expect(400),
      ),
    ).toEqual(['vlanId']);
  });

  it('lets isolated L2 networks reuse a subnet but never overlaps routable ones', async () => {
    await t
      .post('/networks', { name: 'tenant-a', model: 'overlay', cidr: '192.168.50.0/24' })
      .expect(201);
    await t
      .post('/networks', { name: 'tenant-b', model: 'fabric', cidr: '192.168.50.0/24' })
      .expect(201);
    await t
      .post('/networks', { name: 'tenant-c', model: 'bridge', cidr: '192.168.50.0/25' })
      .expect(201);
    const over = await t
      .post('/networks', { name: 'pods-2', model: 'routed', cidr: '10.244.128.0/17' })
      .expect(409);
    expect(over.body.message).toContain('overlaps');
    // a routed network may overlap isolated L2 networks: they never share a routing table
    await t
      .post('/networks', { name: 'pods-3', model: 'routed', cidr: '192.168.50.0/24' })
      .expect(201);
  });

  it('reports pool usage and releases ids on delete; 409 when a pool is exhausted', async () => {
    const before = (await t.get('/pools').expect(200)).body;
    expect(before.vlan).toMatchObject({ start: 100, end: 104, size: 5 });
    expect(before.vni).toMatchObject({ start: 5000, end: 5999, size: 1000 });
    const used = before.vlan.used;
    const made: string[] = [];
    for (let i = used; i < 5; i++)
      made.push(
        (
          await t
            .post('/networks', { name: `fill-${i}`, model: 'vlan', cidr: '10.11.0.0/24' })
            .expect(201)
        ).body.name,
      );
    const full = await t.get('/pools').expect(200);
    expect(full.body.vlan).toMatchObject({ used: 5, free: 0, usedOutsideRange: 1 });
    const ex = await t
      .post('/networks', { name: 'one-more', model: 'vlan', cidr: '10.11.0.0/24' })
      .expect(409);
    expect(ex.body.message).toContain('exhausted');
    const gone = await t.get(`/networks/${made[0]}`).expect(200);
    await t.del(`/networks/${made[0]}`).expect(200);
    expect((await t.get('/pools').expect(200)).body.vlan.used).toBe(4);
    const again = await t
      .post('/networks', { name: 'one-more', model: 'vlan', cidr: '10.11.0.0/24' })
      .expect(201);
    expect(again.body.vlanId).toBe(gone.body.vlanId);
  });

  it('deletes only networks without instances', async () => {
    const h = await t.newHost();
    const n = await t.newNetwork('overlay', '10.12.0.0/24');
    const i = await t.newInstance(n.name, h.name);
    expect((await t.del(`/networks/${n.name}`).expect(409)).body.message).toContain('instance');
    await t.del(`/instances/${i.id}`).expect(200);
    const res = await t.del(`/networks/${n.id}`).expect(200);
    expect(res.body).toMatchObject({ deleted: true, name: n.name });
    await t.get(`/networks/${n.name}`).expect(404);
  });

  it('lists with a model filter', async () => {
    const res = await t.get('/networks?model=fabric&limit=1000').expect(200);
    expect(res.body.items.length).toBeGreaterThanOrEqual(2);
    expect(res.body.items.every((n: { model: string }) => n.model === 'fabric')).toBe(true);
    await t.get('/networks?model=mesh').expect(400);
  });
});
