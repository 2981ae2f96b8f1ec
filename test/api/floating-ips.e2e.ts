import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql, startController, type TestController } from '../support/controller.js';

/** Egress (natOutgoing) and floating IPs through the API, down to the desired state. */
let t: TestController;
let h1: any, h2: any;
beforeAll(async () => {
  t = await startController();
  h1 = await t.newHost({ underlayIp: '192.0.2.21' });
  h2 = await t.newHost({ underlayIp: '192.0.2.22' });
});
afterAll(() => t?.close());

type Res = { kind: string; key: string; spec: any };
const resources = async (h: any): Promise<Res[]> =>
  (await t.get(`/hosts/${h.name}/desired-state`).expect(200)).body.resources;
const ofKind = async (h: any, kind: string) => (await resources(h)).filter((r) => r.kind === kind);

let block = 0;
const nextCidr = () => `10.${60 + Math.floor(++block / 250)}.${block % 250}.0/24`;

describe('egress: natOutgoing', () => {
  it('defaults to false, is set at creation and by PATCH, and reaches the filter as snat', async () => {
    const plain = await t.newNetwork('bridge', nextCidr());
    expect(plain.natOutgoing).toBe(false);
    const out = await t.newNetwork('overlay', nextCidr(), { natOutgoing: true });
    expect(out.natOutgoing).toBe(true);
    await t.newInstance(plain.name, h1.name);
    await t.newInstance(out.name, h1.name);

    const filters = await ofKind(h1, 'filter');
    const snatOf = (net: any) => filters.find((f) => f.spec.network === net.id)?.spec.snat;
    expect(snatOf(out)).toBe('192.0.2.21');
    expect(snatOf(plain)).toBeNull();
    // every Lattice network is "inside": the host's netset names both CIDRs
    const [netset] = await ofKind(h1, 'netset');
    expect(netset.spec.cidrs).toEqual(expect.arrayContaining([plain.cidr, out.cidr]));

    const off = await t.patch(`/networks/${out.name}`, { natOutgoing: false }).expect(200);
    expect(off.body.natOutgoing).toBe(false);
    expect(off.body.revision).toBeGreaterThan(out.revision);
    expect((await t.get(`/networks/${out.id}`).expect(200)).body.natOutgoing).toBe(false);
    expect((await ofKind(h1, 'filter')).every((f) => f.spec.snat === null)).toBe(true);
    expect(await ofKind(h1, 'netset')).toEqual([]);

    const on = await t.patch(`/networks/${plain.id}`, { natOutgoing: true }).expect(200);
    expect(on.body.natOutgoing).toBe(true);
    const again = (await ofKind(h1, 'filter')).find((f) => f.spec.network === plain.id);
    expect(again?.spec.snat).toBe('192.0.2.21');
    // recorded as a network change: a fresh replica computes the same
    const [row] = await sql<{ changes: any[] }>(
      t.databaseUrl,
      'SELECT changes FROM revisions WHERE revision = $1',
      [on.body.revision],
    );
    expect(row.changes).toEqual([
      expect.objectContaining({
        type: 'network.upsert',
        network: expect.objectContaining({ id: plain.id, natOutgoing: true }),
      }),
    ]);
    await t.patch(`/networks/${plain.id}`, { natOutgoing: false }).expect(200);
    expect(await ofKind(h1, 'netset')).toEqual([]);
  });

  it('a PATCH that changes nothing commits nothing; bad bodies are 400s; unknown networks 404', async () => {
    const n = await t.newNetwork('bridge', nextCidr(), { natOutgoing: true });
    const same = await t.patch(`/networks/${n.name}`, { natOutgoing: true }).expect(200);
    expect(same.body.revision).toBe(n.revision);
    for (const body of [{ natOutgoing: 'yes' }, { mtu: 1400 }, { cidr: '10.99.0.0/24' }]) {
      const res = await t.patch(`/networks/${n.name}`, body).expect(400);
      expect(res.body.statusCode).toBe(400);
    }
    await t
      .post('/networks', { name: 'nat-bad', model: 'bridge', cidr: nextCidr(), natOutgoing: 1 })
      .expect(400);
    await t.patch('/networks/nope', { natOutgoing: true }).expect(404);
  });
});

describe('floating IP pools', () => {
  it('creates, reads, lists and deletes a pool; sizes leave out the first and last address', async () => {
    const res = await t
      .post('/floating-ip-pools', { name: 'pub-a', cidr: '198.51.100.0/28' })
      .expect(201);
    expect(res.body).toMatchObject({ name: 'pub-a', cidr: '198.51.100.0/28', size: 14, used: 0 });
    expect((await t.get('/floating-ip-pools/pub-a').expect(200)).body.id).toBe(res.body.id);
    expect((await t.get(`/floating-ip-pools/${res.body.id}`).expect(200)).body.name).toBe('pub-a');
    const single = await t
      .post('/floating-ip-pools', { name: 'pub-one', cidr: '198.51.100.200/32' })
      .expect(201);
    expect(single.body.size).toBe(1);
    const list = (await t.get('/floating-ip-pools').expect(200)).body.items.map((p: any) => p.name);
    expect(list).toEqual(expect.arrayContaining(['pub-a', 'pub-one']));
    await t.del('/floating-ip-pools/pub-one').expect(200);
    await t.get('/floating-ip-pools/pub-one').expect(404);
    await t.del('/floating-ip-pools/pub-a').expect(200);
  });

  it('refuses overlaps with pools and networks (both ways), odd prefixes and names', async () => {
    await t.post('/floating-ip-pools', { name: 'pub-b', cidr: '198.51.100.64/27' }).expect(201);
    const dup = await t
      .post('/floating-ip-pools', { name: 'pub-c', cidr: '198.51.100.80/28' })
      .expect(409);
    expect(dup.body.message).toMatch(/overlaps another floating IP pool/);
    await t.post('/floating-ip-pools', { name: 'pub-b', cidr: '198.51.100.128/28' }).expect(409);
    const net = await t.newNetwork('bridge', '10.77.0.0/24');
    const onNet = await t
      .post('/floating-ip-pools', { name: 'pub-d', cidr: '10.77.0.0/28' })
      .expect(409);
    expect(onNet.body.message).toContain(net.name);
    const onPool = await t
      .post('/networks', { name: 'over-pool', model: 'bridge', cidr: '198.51.100.64/26' })
      .expect(409);
    expect(onPool.body.message).toContain('pub-b');
    for (const cidr of ['10.0.0.0/8', '198.51.100.1/32x', '198.51.100.1/24', 'x']) {
      await t.post('/floating-ip-pools', { name: 'pub-e', cidr }).expect(400);
    }
    await t.post('/floating-ip-pools', { name: 'Bad Name', cidr: '198.51.100.240/28' }).expect(400);
    await t.del('/floating-ip-pools/pub-b').expect(200);
  });
});

describe('floating IPs', () => {
  it('allocates the lowest free address, skipping host underlay addresses; a requested one is checked', async () => {
    await t.post('/floating-ip-pools', { name: 'pub-f', cidr: '203.0.113.0/29' }).expect(201);
    const host = await t.newHost({ underlayIp: '203.0.113.1' });
    const a = await t.post('/floating-ips', { pool: 'pub-f' }).expect(201);
    expect(a.body).toMatchObject({
      address: '203.0.113.2',
      pool: 'pub-f',
      instanceId: null,
      host: null,
    });
    const b = await t.post('/floating-ips', { pool: 'pub-f', address: '203.0.113.5' }).expect(201);
    expect(b.body.address).toBe('203.0.113.5');
    // the next lowest free fills the gap
    expect((await t.post('/floating-ips', { pool: 'pub-f' }).expect(201)).body.address).toBe(
      '203.0.113.3',
    );
    const taken = await t
      .post('/floating-ips', { pool: 'pub-f', address: '203.0.113.5' })
      .expect(409);
    expect(taken.body.message).toMatch(/already allocated/);
    const hostIp = await t
      .post('/floating-ips', { pool: 'pub-f', address: '203.0.113.1' })
      .expect(409);
    expect(hostIp.body.message).toContain(host.name);
    for (const address of ['203.0.113.0', '203.0.113.7', '203.0.113.9', 'nope']) {
      await t.post('/floating-ips', { pool: 'pub-f', address }).expect(400);
    }
    expect((await t.post('/floating-ips', { pool: 'pub-f' }).expect(201)).body.address).toBe(
      '203.0.113.4',
    );
    expect((await t.post('/floating-ips', { pool: 'pub-f' }).expect(201)).body.address).toBe(
      '203.0.113.6',
    );
    // …and a host cannot take an allocated floating IP as its underlay address
    const clash = await t
      .post('/hosts', { name: 'fip-clash', underlayIp: '203.0.113.4' })
      .expect(409);
    expect(clash.body.message).toMatch(/allocated floating IP/);
    await t.patch(`/hosts/${host.name}`, { underlayIp: '203.0.113.6' }).expect(409);
    const full = await t.post('/floating-ips', { pool: 'pub-f' }).expect(409);
    expect(full.body.message).toMatch(/exhausted/);
    expect((await t.get('/floating-ip-pools/pub-f').expect(200)).body.used).toBe(5);
    await t.post('/floating-ips', { pool: 'nope' }).expect(404);
    await t.post('/floating-ips', {}).expect(400);
    // a pool with addresses cannot go
    await t.del('/floating-ip-pools/pub-f').expect(409);
    const all = (await t.get('/floating-ips?pool=pub-f&limit=2').expect(200)).body;
    expect(all.items.map((f: any) => f.address)).toEqual(['203.0.113.2', '203.0.113.3']);
    const next = (
      await t.get(`/floating-ips?pool=pub-f&limit=10&cursor=${all.nextCursor}`).expect(200)
    ).body;
    expect(next.items.map((f: any) => f.address)).toEqual([
      '203.0.113.4',
      '203.0.113.5',
      '203.0.113.6',
    ]);
    await t.get('/floating-ips?cursor=bogus').expect(400);
    for (const f of [...all.items, ...next.items])
      await t.del(`/floating-ips/${f.address}`).expect(200);
    await t.del('/floating-ip-pools/pub-f').expect(200);
  });

  it('binds to an instance: its host gets the fip resource, which follows a move; unbinding removes it', async () => {
    await t.post('/floating-ip-pools', { name: 'pub-g', cidr: '198.51.100.32/28' }).expect(201);
    const net = await t.newNetwork('bridge', nextCidr());
    const web = await t.newInstance(net.name, h1.name);
    const other = await t.newInstance(net.name, h1.name);
    const f = await t.post('/floating-ips', { pool: 'pub-g', instance: web.name }).expect(201);
    expect(f.body).toMatchObject({
      address: '198.51.100.33',
      instanceId: web.id,
      instance: web.name,
      host: h1.name,
    });
    expect(f.body.revision).toBeGreaterThan(other.revision);

    const fip1 = await ofKind(h1, 'fip');
    expect(fip1).toHaveLength(1);
    expect(fip1[0].spec).toMatchObject({
      address: '198.51.100.33',
      instance: web.id,
      ip: web.ip,
      network: net.id,
    });
    expect(await ofKind(h1, 'netset')).toHaveLength(1);
    expect(await ofKind(h2, 'fip')).toEqual([]);

    // one floating IP per instance
    const second = await t.post('/floating-ips', { pool: 'pub-g', instance: web.id }).expect(409);
    expect(second.body.message).toMatch(/already has a floating IP/);

    // the instance moves: so does the address
    await t.patch(`/instances/${web.name}`, { host: h2.name }).expect(200);
    expect(await ofKind(h1, 'fip')).toEqual([]);
    expect((await ofKind(h2, 'fip')).map((r) => r.spec.address)).toEqual(['198.51.100.33']);
    expect((await t.get('/floating-ips/198.51.100.33').expect(200)).body.host).toBe(h2.name);

    // rebind to the other instance, then unbind
    const re = await t.patch(`/floating-ips/${f.body.id}`, { instance: other.name }).expect(200);
    expect(re.body).toMatchObject({ instance: other.name, host: h1.name });
    expect((await ofKind(h1, 'fip')).map((r) => r.spec.instance)).toEqual([other.id]);
    expect(await ofKind(h2, 'fip')).toEqual([]);
    const un = await t.patch('/floating-ips/198.51.100.33', { instance: null }).expect(200);
    expect(un.body).toMatchObject({ instanceId: null, instance: null, host: null });
    expect(await ofKind(h1, 'fip')).toEqual([]);
    expect(await ofKind(h1, 'netset')).toEqual([]);
    await t.patch('/floating-ips/198.51.100.33', {}).expect(400);
    await t.patch('/floating-ips/198.51.100.33', { instance: 'nope' }).expect(404);
    await t.patch('/floating-ips/198.51.100.47', { instance: null }).expect(404);
    await t.get('/floating-ips/not-an-address').expect(404);

    // deleting the bound instance unbinds it
    await t.patch('/floating-ips/198.51.100.33', { instance: web.id }).expect(200);
    await t.del(`/instances/${web.name}`).expect(200);
    expect((await t.get('/floating-ips/198.51.100.33').expect(200)).body.instanceId).toBeNull();
    expect(await ofKind(h2, 'fip')).toEqual([]);

    // released: the address is free again
    await t.patch('/floating-ips/198.51.100.33', { instance: other.id }).expect(200);
    const gone = await t.del('/floating-ips/198.51.100.33').expect(200);
    expect(gone.body).toMatchObject({ deleted: true, name: '198.51.100.33' });
    expect(await ofKind(h1, 'fip')).toEqual([]);
    await t.get('/floating-ips/198.51.100.33').expect(404);
    expect((await t.post('/floating-ips', { pool: 'pub-g' }).expect(201)).body.address).toBe(
      '198.51.100.33',
    );
  });
});
