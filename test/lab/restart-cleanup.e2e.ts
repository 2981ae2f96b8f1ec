import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { freePort } from '../../apps/controller/src/database/embedded-postgres.js';
import { listNetns, run } from '../../lab/src/shell.js';
import { startController } from '../support/controller.js';
import {
  agentErrors,
  create,
  describeLab,
  eventually,
  expectMesh,
  expectReachable,
  hostNs,
  ipJson,
  LAB_ENV,
  ping,
  sleep,
  startLab,
  stopLab,
  type Lab,
} from './lab-support.js';

/**
 * The data plane outlives the controller: pings keep flowing while it restarts, and the
 * agents resync. Then deleting everything through REST leaves nothing owned behind.
 */
let lab: Lab | undefined;
const L = () => lab!;
const HOSTS = ['h1', 'h2', 'h3'];

describeLab('real packets: controller restart and clean removal', () => {
  beforeAll(async () => {
    lab = await startLab(3, { port: await freePort() });
  }, 60_000);

  afterAll(async () => {
    await stopLab(lab);
  }, 60_000);

  it('restart: pings keep working while the controller is away, and agents resync', async () => {
    await create(L(), '/networks', { name: 'keep', model: 'overlay', cidr: '10.70.0.0/24' });
    await create(L(), '/networks', {
      name: 'pods',
      model: 'routed',
      routing: 'bgp',
      cidr: '10.71.0.0/16',
    });
    const k: any[] = [];
    const p: any[] = [];
    for (const [i, host] of HOSTS.entries()) {
      k.push(await create(L(), '/instances', { name: `keep${i + 1}`, network: 'keep', host }));
      p.push(await create(L(), '/instances', { name: `pod${i + 1}`, network: 'pods', host }));
    }
    await expectMesh(L(), k);
    await expectMesh(L(), p); // BGP routes are in by now

    // A pinger across hosts, for both models, for as long as the restart takes.
    let running = true;
    const tally = { sent: 0, lost: [] as string[] };
    const pinger = (async () => {
      while (running) {
        for (const [from, to] of [
          [k[0], k[2]],
          [p[0], p[1]],
          [p[2], p[0]],
        ]) {
          tally.sent++;
          if (!(await ping(L(), from.name, to.ip))) tally.lost.push(`${from.name}→${to.ip}`);
        }
        await sleep(50);
      }
    })();
    try {
      const { databaseUrl, dataDir } = L().t;
      const port = Number(new URL(L().t.url).port);
      await L().t.close();
      await sleep(2000); // agents notice and retry; the kernel keeps forwarding
      const downSent = tally.sent;
      L().t = await startController({ databaseUrl, dataDir, port, env: LAB_ENV });
      const resyncMs = await eventually(
        'every agent reconnected and in sync',
        async () => {
          const hosts = (await L().t.get('/hosts').expect(200)).body.items as any[];
          return hosts.length === 3 && hosts.every((h) => h.agent.connected && h.inSync);
        },
        40_000,
        100,
      );
      console.log(
        `restart: ${downSent} pings while the controller was down, agents in sync ${resyncMs} ms after it came back`,
      );
    } finally {
      running = false;
      await pinger;
    }
    expect(tally.lost).toEqual([]);
    expect(tally.sent).toBeGreaterThan(10);
    // The resynced controller drives the data plane again.
    const late = await create(L(), '/instances', { name: 'keep4', network: 'keep', host: 'h3' });
    await expectReachable(L(), 'keep1', late.ip);
    expect(await agentErrors(L())).toEqual([]);
  }, 90_000);

  it('deleting everything through REST leaves no owned object in any host namespace', async () => {
    await create(L(), '/networks', { name: 'fab', model: 'fabric', cidr: '10.72.0.0/24' });
    await create(L(), '/networks', { name: 'seg', model: 'vlan', cidr: '10.73.0.0/24' });
    await create(L(), '/routers', { name: 'r1', networks: ['keep', 'seg'] });
    for (const [i, host] of HOSTS.entries()) {
      await create(L(), '/instances', { name: `fab${i + 1}`, network: 'fab', host });
      await create(L(), '/instances', { name: `seg${i + 1}`, network: 'seg', host });
    }
    const w = '?wait=applied&timeoutMs=20000';
    const instances = (await L().t.get('/instances?limit=1000').expect(200)).body.items as any[];
    for (const i of instances) await L().t.del(`/instances/${i.name}${w}`).expect(200);
    for (const r of (await L().t.get('/routers').expect(200)).body.items as any[]) {
      await L().t.del(`/routers/${r.name}${w}`).expect(200);
    }
    for (const n of (await L().t.get('/networks').expect(200)).body.items as any[]) {
      await L().t.del(`/networks/${n.name}${w}`).expect(200);
    }

    const wiring = new Set(['lo', 'eth0', ...L().state.vlans.map((v) => `eth0.${v}`)]);
    const ownNs = new Set(L().state.namespaces);
    // no instance namespaces of this lab
    expect(
      (await listNetns()).filter((n) => n.startsWith(`${L().prefix}-`) && !ownNs.has(n)),
    ).toEqual([]);
    for (const h of HOSTS) {
      const links = (await ipJson(L(), h, ['link', 'show'])).map((l: any) => l.ifname as string);
      expect({ host: h, extra: links.filter((l: string) => !wiring.has(l)) }).toEqual({
        host: h,
        extra: [],
      });
      expect(await ipJson(L(), h, ['route', 'show', 'proto', '76'])).toEqual([]);
      expect(await ipJson(L(), h, ['route', 'show', 'proto', 'bird'])).toEqual([]);
      const nft = await run([
        'ip',
        'netns',
        'exec',
        hostNs(L(), h),
        'nft',
        'list',
        'table',
        'inet',
        'lattice',
      ]);
      const rules =
        nft.code === 0 ? nft.stdout.split('\n').filter((l) => /accept|drop/.test(l)) : [];
      expect({ host: h, rules }).toEqual({ host: h, rules: [] });
      // BIRD was stopped with the last bgp network: nothing runs in the host namespace
      const pids = (await run(['ip', 'netns', 'pids', hostNs(L(), h)])).stdout.trim();
      expect({ host: h, pids }).toEqual({ host: h, pids: '' });
    }
    expect(await agentErrors(L())).toEqual([]);
  }, 60_000);
});
