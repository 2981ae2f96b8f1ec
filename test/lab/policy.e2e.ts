import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import {
  create,
  describeLab,
  eventually,
  inNs,
  instanceNs,
  ping,
  startLab,
  stopLab,
  type Lab,
} from './lab-support.js';

/**
 * Network policy with real packets: three hosts, an overlay (VXLAN) network and a routed
 * one joined by a router, and a VLAN network. A policy on the web instance allows tcp/8080 and udp/5353 from
 * db-labelled instances only: what it allows passes, other ports and ICMP are dropped,
 * replies of allowed connections pass, a label change on an instance across the router
 * takes effect, an egress deny holds, the preview's pairs match what the packets do, and
 * deleting the policies restores reachability. Listeners and clients are small Node
 * scripts run inside the instances' namespaces; all traffic stays in the lab.
 */
let lab: Lab | undefined;
const L = () => lab!;
const listeners: ChildProcess[] = [];
const ips = new Map<string, string>();

const SERVER = `
const net = require('net'), dgram = require('dgram');
for (const p of [8080, 8081]) net.createServer((s) => { s.on('error', () => {}); s.end('ok'); }).listen(p, '0.0.0.0');
const u = dgram.createSocket('udp4');
u.on('message', (m, r) => u.send(m, r.port, r.address));
u.bind(5353, '0.0.0.0', () => console.log('listening'));
`;

/** A TCP connect from an instance: true when it connects within 1 s. */
async function tcp(from: string, to: string, port: number): Promise<boolean> {
  const script =
    `const s=require('net').connect({host:'${ips.get(to)}',port:${port}});` +
    `s.setTimeout(1000);s.on('connect',()=>process.exit(0));` +
    `s.on('timeout',()=>process.exit(2));s.on('error',()=>process.exit(3));`;
  return (await inNs(instanceNs(L(), from), ['node', '-e', script])).code === 0;
}

/** A UDP request from an instance: true when the echo comes back within 1 s. */
async function udp(from: string, to: string, port: number): Promise<boolean> {
  const script =
    `const u=require('dgram').createSocket('udp4');u.on('message',()=>process.exit(0));` +
    `u.send('x',${port},'${ips.get(to)}');setTimeout(()=>process.exit(2),1000);`;
  return (await inNs(instanceNs(L(), from), ['node', '-e', script])).code === 0;
}

const wait = '?wait=applied&timeoutMs=30000';

describeLab('real packets: network policy', () => {
  beforeAll(async () => {
    lab = await startLab(3);
    await create(L(), '/networks', { name: 'ov', model: 'overlay', cidr: '10.8.0.0/24' });
    await create(L(), '/networks', {
      name: 'hg',
      model: 'routed',
      routing: 'static',
      cidr: '10.9.0.0/16',
    });
    await create(L(), '/routers', { name: 'r1', networks: ['ov', 'hg'] });
    await create(L(), '/networks', { name: 'vl', model: 'vlan', cidr: '10.10.0.0/24' });
    for (const [name, network, host, app] of [
      ['web1', 'ov', 'h1', 'web'],
      ['db1', 'ov', 'h2', 'db'],
      ['cl1', 'hg', 'h3', 'client'],
      ['vweb', 'vl', 'h1', 'web'],
      ['vdb', 'vl', 'h3', 'db'],
    ] as const) {
      const i = await create(L(), '/instances', { name, network, host, labels: { app } });
      ips.set(name, i.ip as string);
    }
    for (const name of ['web1', 'vweb']) {
      const srv = spawn('ip', ['netns', 'exec', instanceNs(L(), name), 'node', '-e', SERVER], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      listeners.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.stdout.once('data', () => resolve());
        srv.once('exit', (c) => reject(new Error(`listener exited with ${c}`)));
      });
    }
  }, 120_000);

  afterAll(async () => {
    for (const l of listeners) {
      l.kill('SIGKILL');
      if (l.exitCode === null) await new Promise((r) => l.once('exit', r));
    }
    await stopLab(lab);
  }, 60_000);

  it('enforces, previews and releases policy on every hop', async () => {
    // Before any policy everything reaches web1.
    await eventually(
      'cl1 reaches web1 across the router',
      () => tcp('cl1', 'web1', 8081),
      20_000,
      200,
    );
    expect(await tcp('db1', 'web1', 8081)).toBe(true);
    expect(await ping(L(), 'db1', ips.get('web1')!)).toBe(true);

    const body = {
      name: 'web-in',
      selector: { matchLabels: { app: 'web' } },
      ingress: [
        {
          peers: [{ selector: { matchLabels: { app: 'db' } } }],
          ports: [
            { protocol: 'tcp', port: 8080 },
            { protocol: 'udp', port: 5353 },
          ],
        },
      ],
    };
    const preview = (await L().t.post('/policies?dryRun=true', body).expect(200)).body;
    const denied = new Map<string, any[]>(
      preview.denied.map((f: any) => [`${f.from.name}>${f.to.name}`, f.ports]),
    );
    expect([...denied.keys()].sort()).toEqual(['cl1>web1', 'db1>web1', 'vdb>vweb']);
    expect(denied.get('cl1>web1')).toEqual([{ protocol: 'any', port: null, endPort: null }]);
    expect(denied.get('db1>web1')).toContainEqual({ protocol: 'icmp', port: null, endPort: null });
    expect(denied.get('db1>web1')).toContainEqual({ protocol: 'tcp', port: 8081, endPort: 65535 });

    await L().t.post(`/policies${wait}`, body).expect(201);
    // What the preview said is denied is denied; what it left allowed still passes.
    expect(await tcp('db1', 'web1', 8080)).toBe(true);
    expect(await udp('db1', 'web1', 5353)).toBe(true);
    expect(await tcp('db1', 'web1', 8081)).toBe(false);
    expect(await ping(L(), 'db1', ips.get('web1')!)).toBe(false);
    expect(await tcp('cl1', 'web1', 8080)).toBe(false);
    // The same policy on a VLAN network, across hosts.
    expect(await tcp('vdb', 'vweb', 8080)).toBe(true);
    expect(await tcp('vdb', 'vweb', 8081)).toBe(false);
    expect(await ping(L(), 'vdb', ips.get('vweb')!)).toBe(false);
    // web1's own connections are not restricted, and their replies pass its ingress.
    expect(await ping(L(), 'web1', ips.get('db1')!)).toBe(true);

    // A label change across the router takes effect once applied.
    const t0 = performance.now();
    await L()
      .t.patch(`/instances/cl1${wait}`, { labels: { app: 'db' } })
      .expect(200);
    await eventually('cl1 (now db) reaches web1:8080', () => tcp('cl1', 'web1', 8080), 10_000, 50);
    console.log(`label change → enforced: ${Math.round(performance.now() - t0)} ms`);
    expect(await tcp('cl1', 'web1', 8081)).toBe(false);

    // Egress deny at the source.
    await L()
      .t.post(`/policies${wait}`, {
        name: 'db-out',
        selector: { matchLabels: { app: 'db' } },
        egress: [],
      })
      .expect(201);
    expect(await tcp('db1', 'web1', 8080)).toBe(false);
    expect(await udp('db1', 'web1', 5353)).toBe(false);

    // Deleting the policies restores reachability.
    await L().t.del(`/policies/db-out${wait}`).expect(200);
    await L().t.del(`/policies/web-in${wait}`).expect(200);
    expect(await tcp('db1', 'web1', 8081)).toBe(true);
    expect(await ping(L(), 'db1', ips.get('web1')!)).toBe(true);
    expect(await tcp('cl1', 'web1', 8081)).toBe(true);
    expect(await tcp('vdb', 'vweb', 8081)).toBe(true);
  }, 120_000);
});
