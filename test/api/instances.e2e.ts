import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql, startController, type TestController } from '../support/controller.js';

let t: TestController;
let h1: any, h2: any;
beforeAll(async () => {
  t = await startController();
  h1 = await t.newHost();
  h2 = await t.newHost();
});
afterAll(() => t.close());

const fields = (res: { body: { details?: { field: string }[] } }) =>
  (res.body.details ?? []).map((d) => d.field).sort();

describe('instances on shared-subnet networks', () => {
  it('allocates the lowest free address, skipping network, gateway and broadcast', async () => {
    const n = await t.newNetwork('overlay', '10.20.0.0/29', { gateway: '10.20.0.3' });
    const ips: string[] = [];
    for (let i = 0; i < 5; i++) ips.push((await t.newInstance(n.name, h1.name)).ip);
    expect(ips).toEqual(['10.20.0.1', '10.20.0.2', '10.20.0.4', '10.20.0.5', '10.20.0.6']);
    const full = await t
      .post('/instances', { name: 'no-room', network: n.name, host: h1.name })
      .expect(409);
    expect(full.body.message).toContain('exhausted');
  });

  it('reuses a freed address', async () => {
    const n = await t.newNetwork('bridge', '10.21.0.0/24');
    const a = await t.newInstance(n.name, h1.name);
    const b = await t.newInstance(n.name, h1.name);
    await t.del(`/instances/${a.name}`).expect(200);
    const c = await t.newInstance(n.name, h1.name);
    expect([a.ip, b.ip, c.ip]).toEqual(['10.21.0.2', '10.21.0.3', '10.21.0.2']);
  });

  it('honours an explicit IP and MAC when valid and free', async () => {
    const n = await t.newNetwork('fabric', '10.22.0.0/24');
    const res = await t
      .post('/instances', {
        name: 'fixed',
        network: n.id,
        host: h2.id,
        ip: '10.22.0.77',
        mac: '0A-BB-CC-DD-EE-01',
      })
      .expect(201);
    expect(res.body).toMatchObject({
      ip: '10.22.0.77',
      mac: '0a:bb:cc:dd:ee:01',
      network: n.name,
      host: h2.name,
      networkId: n.id,
      hostId: h2.id,
      state: 'pending',
    });
    expect(
      (
        await t
          .post('/instances', {
            name: 'ip-taken',
            network: n.name,
            host: h1.name,
            ip: '10.22.0.77',
          })
          .expect(409)
      ).body.message,
    ).toContain('10.22.0.77');
    expect(
      (
        await t
          .post('/instances', {
            name: 'mac-taken',
            network: n.name,
            host: h1.name,
            mac: '0a:bb:cc:dd:ee:01',
          })
          .expect(409)
      ).body.message,
    ).toContain('MAC');
  });

  it('generates locally administered unicast MACs', async () => {
    const n = await t.newNetwork('bridge', '10.23.0.0/24');
    for (let i = 0; i < 10; i++) {
      const { mac } = await t.newInstance(n.name, h1.name);
      expect(mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      const first = parseInt(mac.slice(0, 2), 16);
      expect(first & 1).toBe(0);
      expect(first & 2).toBe(2);
    }
  });

  it('refuses addresses outside the subnet or reserved, multicast MACs, bad names', async () => {
    const n = await t.newNetwork('vlan', '10.24.0.0/24');
    const base = { network: n.name, host: h1.name };
    expect(
      fields(await t.post('/instances', { ...base, name: 'out', ip: '10.25.0.5' }).expect(400)),
    ).toEqual(['ip']);
    expect(
      fields(await t.post('/instances', { ...base, name: 'gw', ip: '10.24.0.1' }).expect(400)),
    ).toEqual(['ip']);
    expect(
      fields(await t.post('/instances', { ...base, name: 'bc', ip: '10.24.0.255' }).expect(400)),
    ).toEqual(['ip']);
    expect(
      fields(await t.post('/instances', { ...base, name: 'net', ip: '10.24.0.0' }).expect(400)),
    ).toEqual(['ip']);
    expect(
      fields(
        await t
          .post('/instances', { ...base, name: 'Bad Name', ip: 'x', mac: '01:00:5e:00:00:01' })
          .expect(400),
      ),
    ).toEqual(['ip', 'mac', 'name']);
    expect(
      fields(
        await t
          .post('/instances', { ...base, name: 'bcast', mac: 'ff:ff:ff:ff:ff:ff' })
          .expect(400),
      ),
    ).toEqual(['mac']);
    expect(
      fields(
        await t.post('/instances', { ...base, name: 'zero', mac: '00:00:00:00:00:00' }).expect(400),
      ),
    ).toEqual(['mac']);
    await t.post('/instances', { ...base, name: 'nonet', network: 'nope' }).expect(404);
    await t.post('/instances', { ...base, name: 'nohost', host: 'nope' }).expect(404);
  });

  it('refuses duplicate instance names', async () => {
    const n = await t.newNetwork('bridge', '10.26.0.0/24');
    await t.post('/instances', { name: 'twin', network: n.name, host: h1.name }).expect(201);
    expect(
      (await t.post('/instances', { name: 'twin', network: n.name, host: h1.name }).expect(409))
        .body.message,
    ).toContain('name');
  });

  it('moves an instance to another host keeping IP and MAC', async () => {
    const n = await t.newNetwork('overlay', '10.27.0.0/24');
    const i = await t.newInstance(n.name, h1.name);
    const moved = await t.patch(`/instances/${i.name}`, { host: h2.name }).expect(200);
    expect(moved.body).toMatchObject({
      id: i.id,
      ip: i.ip,
      mac: i.mac,
      host: h2.name,
      hostId: h2.id,
    });
    expect(moved.body.revision).toBeGreaterThan(i.revision);
    const again = await t.get(`/instances/${i.id}`).expect(200);
    expect(again.body.host).toBe(h2.name);
    // a move to where it already is changes nothing
    const same = await t.patch(`/instances/${i.name}`, { host: h2.id }).expect(200);
    expect(same.body.revision).toBe(moved.body.revision);
    await t.patch(`/instances/${i.name}`, { host: 'nope' }).expect(404);
    expect(fields(await t.patch(`/instances/${i.name}`, { host: 5 }).expect(400))).toEqual([
      'host',
    ]);
    await t.patch('/instances/nope', { host: h1.name }).expect(404);
  });

  it('filters the list by network and host, with pagination', async () => {
    const n = await t.newNetwork('bridge', '10.28.0.0/24');
    for (let i = 0; i < 3; i++) await t.newInstance(n.name, h1.name);
    for (let i = 0; i < 2; i++) await t.newInstance(n.name, h2.name);
    const all = await t.get(`/instances?network=${n.name}&limit=1000`).expect(200);
    expect(all.body.items).toHaveLength(5);
    const onH2 = await t.get(`/instances?network=${n.id}&host=${h2.name}`).expect(200);
    expect(onH2.body.items.map((x: any) => x.host)).toEqual([h2.name, h2.name]);
    const p1 = await t.get(`/instances?network=${n.name}&limit=3`).expect(200);
    const p2 = await t
      .get(`/instances?network=${n.name}&limit=3&cursor=${p1.body.nextCursor}`)
      .expect(200);
    expect(p2.body.nextCursor).toBeNull();
    expect([...p1.body.items, ...p2.body.items].map((x: any) => x.name)).toEqual(
      all.body.items.map((x: any) => x.name),
    );
    await t.get('/instances?network=nope').expect(404);
  });
});

describe('instances on block-based networks', () => {
  it('allocates per-host blocks on first use and addresses from the host block', async () => {
    const n = await t.newNetwork('routed', '10.30.0.0/24', { blockPrefixLen: 28 });
    const a1 = await t.newInstance(n.name, h1.name);
    const b1 = await t.newInstance(n.name, h2.name);
    const a2 = await t.newInstance(n.name, h1.name);
    // block 10.30.0.0/28 to h1 (.0 network, .1 gateway, .15 broadcast), 10.30.0.16/28 to h2
    expect([a1.ip, a2.ip, b1.ip]).toEqual(['10.30.0.2', '10.30.0.3', '10.30.0.18']);
    const blocks = await sql(
      t.databaseUrl,
      'SELECT cidr::text, host_id FROM host_blocks WHERE network_id = $1 ORDER BY cidr',
      [n.id],
    );
    expect(blocks).toEqual([
      { cidr: '10.30.0.0/28', host_id: h1.id },
      { cidr: '10.30.0.16/28', host_id: h2.id },
    ]);
  });

  it('takes another block when the host block is full, and 409 when the CIDR has none left', async () => {
    const n = await t.newNetwork('overlay', '10.31.0.0/28', {
      encapsulation: 'ipip',
      blockPrefixLen: 29,
    });
    const ips: string[] = [];
    // two /29 blocks, each with 5 usable addresses (.0 network, .1 gateway, .7 broadcast)
    for (let i = 0; i < 10; i++) ips.push((await t.newInstance(n.name, h1.name)).ip);
    expect(ips).toEqual([
      '10.31.0.2',
      '10.31.0.3',
      '10.31.0.4',
      '10.31.0.5',
      '10.31.0.6',
      '10.31.0.10',
      '10.31.0.11',
      '10.31.0.12',
      '10.31.0.13',
      '10.31.0.14',
    ]);
    const ex = await t
      .post('/instances', { name: 'no-block', network: n.name, host: h2.name })
      .expect(409);
    expect(ex.body.message).toContain('exhausted');
  });

  it('honours explicit IPs: claims the block for the host, refuses another host block', async () => {
    const n = await t.newNetwork('routed', '10.32.0.0/24', { blockPrefixLen: 26 });
    const a = await t
      .post('/instances', { name: 'pinned', network: n.name, host: h1.name, ip: '10.32.0.200' })
      .expect(201);
    expect(a.body.ip).toBe('10.32.0.200');
    const [blk] = await sql(
      t.databaseUrl,
      'SELECT cidr::text, host_id FROM host_blocks WHERE network_id = $1',
      [n.id],
    );
    expect(blk).toEqual({ cidr: '10.32.0.192/26', host_id: h1.id });
    expect(
      (
        await t
          .post('/instances', { name: 'steal', network: n.name, host: h2.name, ip: '10.32.0.201' })
          .expect(409)
      ).body.message,
    ).toContain('another host');
    expect(
      fields(
        await t
          .post('/instances', { name: 'gwb', network: n.name, host: h1.name, ip: '10.32.0.193' })
          .expect(400),
      ),
    ).toEqual(['ip']);
    // the next automatic address for h1 comes from its block
    expect((await t.newInstance(n.name, h1.name)).ip).toBe('10.32.0.194');
  });

  it('releases a block when its last instance goes', async () => {
    const n = await t.newNetwork('routed', '10.33.0.0/24', { routing: 'bgp', blockPrefixLen: 27 });
    const a = await t.newInstance(n.name, h1.name);
    const b = await t.newInstance(n.name, h1.name);
    const count = async () =>
      (
        await sql(
          t.databaseUrl,
          'SELECT count(*)::int AS n FROM host_blocks WHERE network_id = $1',
          [n.id],
        )
      )[0].n;
    expect(await count()).toBe(1);
    await t.del(`/instances/${a.name}`).expect(200);
    expect(await count()).toBe(1);
    await t.del(`/instances/${b.name}`).expect(200);
    expect(await count()).toBe(0);
    // h2 may now take the same block
    expect((await t.newInstance(n.name, h2.name)).ip).toBe('10.33.0.2');
  });

  it('refuses to move instances of block-based networks', async () => {
    const n = await t.newNetwork('routed', '10.34.0.0/24');
    const i = await t.newInstance(n.name, h1.name);
    const res = await t.patch(`/instances/${i.name}`, { host: h2.name }).expect(409);
    expect(res.body.message).toContain('cannot move');
    expect((await t.get(`/instances/${i.name}`).expect(200)).body.host).toBe(h1.name);
  });
});

describe('bulk create', () => {
  it('creates up to 1,000 instances in one transaction and one revision', async () => {
    const n = await t.newNetwork('overlay', '10.40.0.0/20');
    const items = Array.from({ length: 1000 }, (_, i) => ({
      name: `bulk-${i}`,
      network: n.name,
      host: i % 2 ? h1.name : h2.id,
    }));
    const res = await t.post('/instances/bulk', { instances: items }).expect(201);
    expect(res.body.items).toHaveLength(1000);
    expect(new Set(res.body.items.map((i: any) => i.ip)).size).toBe(1000);
    expect(new Set(res.body.items.map((i: any) => i.revision))).toEqual(
      new Set([res.body.revision]),
    );
    const [{ n: revs }] = await sql(
      t.databaseUrl,
      `SELECT count(*)::int AS n FROM revisions WHERE revision = $1`,
      [res.body.revision],
    );
    expect(revs).toBe(1);
  });

  it('is all or none', async () => {
    const n = await t.newNetwork('bridge', '10.41.0.0/24');
    const before = (await t.get('/health').expect(200)).body.revision;
    const items = [
      { name: 'ok-1', network: n.name, host: h1.name },
      { name: 'ok-2', network: n.name, host: h1.name, ip: '10.41.0.9' },
      { name: 'clash', network: n.name, host: h1.name, ip: '10.41.0.9' },
    ];
    await t.post('/instances/bulk', { instances: items }).expect(409);
    expect((await t.get(`/instances?network=${n.name}`).expect(200)).body.items).toEqual([]);
    expect((await t.get('/health').expect(200)).body.revision).toBe(before);
  });

  it('mixes networks, explicit addresses and block-based networks in one bulk', async () => {
    const flat = await t.newNetwork('overlay', '10.42.0.0/28'); // 13 usable
    const pods = await t.newNetwork('routed', '10.43.0.0/24', { blockPrefixLen: 28 });
    const items = [
      { name: 'mx-a', network: flat.name, host: h1.name, ip: '10.42.0.2' },
      { name: 'mx-b', network: flat.name, host: h1.name },
      { name: 'mx-c', network: pods.name, host: h1.name },
      { name: 'mx-d', network: flat.name, host: h2.name, mac: '02:00:00:00:42:01' },
      { name: 'mx-e', network: pods.name, host: h2.name },
      { name: 'mx-f', network: pods.name, host: h1.name },
    ];
    const res = await t.post('/instances/bulk', { instances: items }).expect(201);
    const by = Object.fromEntries(res.body.items.map((i: any) => [i.name, i]));
    expect([by['mx-a'].ip, by['mx-b'].ip, by['mx-d'].ip]).toEqual([
      '10.42.0.2',
      '10.42.0.3',
      '10.42.0.4',
    ]);
    expect(by['mx-d'].mac).toBe('02:00:00:00:42:01');
    expect([by['mx-c'].ip, by['mx-f'].ip, by['mx-e'].ip]).toEqual([
      '10.43.0.2',
      '10.43.0.3',
      '10.43.0.18',
    ]);
    // the rest of the /28 in one bulk: 10 left, 11 asked → exhausted, nothing written
    const more = Array.from({ length: 11 }, (_, i) => ({
      name: `mx-more-${i}`,
      network: flat.name,
      host: h1.name,
    }));
    expect(
      (await t.post('/instances/bulk', { instances: more }).expect(409)).body.message,
    ).toContain('exhausted');
    expect((await t.get(`/instances?network=${flat.name}`).expect(200)).body.items).toHaveLength(3);
    // the same requested MAC twice in one bulk
    const twice = [
      { name: 'mx-m1', network: flat.name, host: h1.name, mac: '02:00:00:00:42:02' },
      { name: 'mx-m2', network: flat.name, host: h1.name, mac: '02:00:00:00:42:02' },
    ];
    expect(
      (await t.post('/instances/bulk', { instances: twice }).expect(409)).body.message,
    ).toContain('MAC');
    expect((await t.get(`/instances?network=${flat.name}`).expect(200)).body.items).toHaveLength(3);
  });

  it('validates every item and the size limit', async () => {
    const res = await t
      .post('/instances/bulk', {
        instances: [
          { name: 'a', network: 'x', host: 'y' },
          { name: 'B', network: 'x' },
          { name: 'a', network: 'x', host: 'y' },
        ],
      })
      .expect(400);
    expect(fields(res)).toEqual(['instances[1].host', 'instances[1].name']);
    const dup = await t
      .post('/instances/bulk', {
        instances: [
          { name: 'a', network: 'x', host: 'y' },
          { name: 'a', network: 'x', host: 'y' },
        ],
      })
      .expect(400);
    expect(fields(dup)).toEqual(['instances[1].name']);
    const tooMany = Array.from({ length: 1001 }, (_, i) => ({
      name: `x${i}`,
      network: 'x',
      host: 'y',
    }));
    expect(fields(await t.post('/instances/bulk', { instances: tooMany }).expect(400))).toEqual([
      'instances',
    ]);
    expect(fields(await t.post('/instances/bulk', { instances: [] }).expect(400))).toEqual([
      'instances',
    ]);
  });
});
