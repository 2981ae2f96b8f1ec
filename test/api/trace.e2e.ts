import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startController, VIEWER_TOKEN, type TestController } from '../support/controller.js';

/** GET /trace through the real API: every answer is checked against the OpenAPI document. */
let t: TestController;
let h1: any, h2: any;
beforeAll(async () => {
  t = await startController();
  h1 = await t.newHost();
  h2 = await t.newHost();
});
afterAll(() => t?.close());

describe('GET /trace', () => {
  it('traces an overlay path across hosts, naming resources findable in the desired state', async () => {
    const net = await t.newNetwork('overlay', '10.77.0.0/24');
    const a = await t.newInstance(net.name, h1.name);
    const b = await t.newInstance(net.name, h2.name);
    const res = await t.get(`/trace?from=${a.name}&to=${b.id}&proto=tcp&port=443`).expect(200);
    expect(res.body).toMatchObject({
      from: a.name,
      to: b.name,
      proto: 'tcp',
      port: 443,
      verdict: 'delivered',
      revision: expect.any(Number),
    });
    expect(res.body.reason).toBeUndefined();
    const vx = res.body.hops.find((h: any) => h.step === 'vxlan');
    expect(vx).toMatchObject({ host: h1.name, hostId: h1.id });
    // Every key a hop names is in that host's desired state.
    for (const hop of res.body.hops as any[]) {
      if (!hop.host) continue;
      const ds = await t.get(`/hosts/${hop.host}/desired-state`).expect(200);
      const keys = new Set(ds.body.resources.map((r: any) => r.key));
      for (const k of hop.resources)
        expect([hop.step, k, keys.has(k)]).toEqual([hop.step, k, true]);
    }
  });

  it('drops between isolated networks and toward an address outside every network', async () => {
    const blue = await t.newNetwork('routed', '10.78.0.0/16');
    const red = await t.newNetwork('routed', '10.79.0.0/16');
    const a = await t.newInstance(blue.name, h1.name);
    const d = await t.newInstance(red.name, h1.name);
    const iso = await t.get(`/trace?from=${a.name}&to=${d.name}`, VIEWER_TOKEN).expect(200);
    expect(iso.body).toMatchObject({ verdict: 'dropped', proto: 'icmp' });
    expect(iso.body.reason).toMatch(/^filter:ltbr-[0-9a-f]{10} on host .* drops it/);
    const out = await t.get(`/trace?from=${a.id}&to=198.51.100.7`).expect(200);
    expect(out.body).toMatchObject({ to: '198.51.100.7', verdict: 'dropped' });
    expect(out.body.reason).toMatch(/no route to 198\.51\.100\.7/);
    // Through a router the same pair is delivered.
    await t.post('/routers', { name: 'tr-r1', networks: [blue.name, red.name] }).expect(201);
    const via = await t.get(`/trace?from=${a.name}&to=${d.name}`).expect(200);
    expect(via.body.verdict).toBe('delivered');
    expect(via.body.hops.find((h: any) => h.step === 'gateway').detail).toMatch(/router tr-r1/);
  });

  it('answers 400 naming every invalid field, and 404 for unknown instances', async () => {
    const bad = await t.get('/trace?to=10.0.0.300&proto=sctp&port=0').expect(400);
    const fields = bad.body.details.map((d: any) => d.field).sort();
    expect(fields).toEqual(['from', 'port', 'proto']);
    const ip = await t.get('/trace?from=x&to=10.0.0.300').expect(400);
    expect(ip.body.details).toEqual([{ field: 'to', errors: [expect.stringMatching(/IPv4/)] }]);
    const icmpPort = await t.get('/trace?from=x&to=y&port=80').expect(400);
    expect(icmpPort.body.details[0].field).toBe('port');
    await t.get('/trace?from=x&to=y&extra=1').expect(400);
    const nf = await t.get('/trace?from=no-such-vm&to=10.0.0.1').expect(404);
    expect(nf.body.message).toBe('instance "no-such-vm" not found');
    await t.get('/trace?from=no-such-vm&to=10.0.0.1', '').expect(401);
  });
});
