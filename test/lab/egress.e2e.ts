import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { contains, ipToInt, parseCidr } from '../../libs/model/src/ipv4.js';
import { labUp, stopAgent } from '../../lab/src/lab.js';
import { run } from '../../lab/src/shell.js';
import { ADMIN_TOKEN } from '../support/controller.js';
import {
  agentErrors,
  create,
  describeLab,
  eventually,
  expectUnreachable,
  hostNs,
  inOutside,
  instanceNs,
  ipJson,
  outsideNs,
  outsideSources,
  ping,
  sleep,
  startLab,
  startTcpEcho,
  stopLab,
  stopTcpServers,
  tcpConnect,
  tcpProbe,
  watchOutside,
  type Lab,
} from './lab-support.js';

/**
 * Egress NAT and floating IPs with real packets (issue 13). The lab's outside namespace is
 * the underlay's upstream: 192.0.2.254 on the underlay, "the internet" 203.0.113.10 on its
 * lo, and no route to any instance network, so it can only ever answer host underlay
 * addresses and floating IPs. A TCP server there answers every connection with the source
 * address it saw; its nftables record every source it received (none may be foreign).
 */
let lab: Lab | undefined;
const L = () => lab!;
const HOSTS = ['h1', 'h2', 'h3'];
const INTERNET_PORT = 8080;
const INSTANCE_PORT = 8081;
const W = '?wait=applied&timeoutMs=20000';
const CONNECT_MS = 2000;
/** The floating IP pool: inside the underlay, above the host addresses (.11 upwards). */
const POOL = '192.0.2.128/27';
/** A second pool, for the BGP case. */
const BGP_POOL = '192.0.2.160/27';

const internet = () => L().state.internetIp;
const underlayIp = (host: string) => L().state.hosts.find((h) => h.name === host)!.underlayIp;

async function inst(name: string, network: string, host: string) {
  return (await create(L(), '/instances', { name, network, host })) as {
    id: string;
    name: string;
    ip: string;
    host: string;
  };
}

/** A TCP connection from an instance to the outside's internet address. */
function toInternet(instance: string, timeoutMs = CONNECT_MS) {
  return tcpConnect(instanceNs(L(), instance), internet(), INTERNET_PORT, timeoutMs);
}

async function expectNoInternet(instance: string): Promise<void> {
  const r = await toInternet(instance);
  expect({ instance, ...r }).toMatchObject({ instance, ok: false });
}

/** Reachable within 10 s (the first packets of a new path may meet ARP or a late apply). */
async function expectInternetAs(instance: string, source: string): Promise<void> {
  let last: unknown;
  await eventually(
    `${instance} reaches ${internet()}:${INTERNET_PORT}`,
    async () => {
      const r = await toInternet(instance, 1000);
      last = r;
      return r.ok;
    },
    10_000,
    50,
  ).catch((e: Error) => {
    throw new Error(`${e.message} (last: ${JSON.stringify(last)})`);
  });
  const r = await toInternet(instance);
  expect({ instance, seenAs: r.data }).toEqual({ instance, seenAs: source });
  console.log(`egress: ${instance} reaches ${internet()}, the outside sees ${r.data}`);
}

async function hostAddrs(host: string, dev = 'eth0'): Promise<{ local: string; label?: string }[]> {
  const links = await ipJson(L(), host, ['addr', 'show', 'dev', dev]);
  return (links[0]?.addr_info ?? []) as { local: string; label?: string }[];
}

/** Evidence for a failure that may be the controller's, the engine's or the agent's. */
async function evidence(host: string): Promise<string> {
  const ns = hostNs(L(), host);
  const nft = await run(['ip', 'netns', 'exec', ns, 'nft', 'list', 'ruleset']);
  const addr = await run(['ip', '-n', ns, 'addr', 'show', 'dev', 'eth0']);
  const route = await run(['ip', '-n', ns, 'route', 'show']);
  return `--- ${host} nft list ruleset\n${nft.stdout}${nft.stderr}\n--- ip addr eth0\n${addr.stdout}\n--- ip route\n${route.stdout}`;
}

describeLab('real packets: egress NAT and floating IPs', () => {
  beforeAll(async () => {
    lab = await startLab(3);
    await watchOutside(L());
    await startTcpEcho(outsideNs(L()), INTERNET_PORT, internet());
  }, 60_000);

  afterAll(async () => {
    await stopTcpServers();
    await stopLab(lab);
  }, 60_000);

  it('lab: the outside is on the underlay, hosts route to it by default, it routes nowhere', async () => {
    const s = L().state;
    expect(s.namespaces).toContain(outsideNs(L()));
    expect(s.outsideIp).toBe('192.0.2.254');
    for (const h of s.hosts) {
      const r = await inOutside(L(), ['ping', '-n', '-q', '-c1', '-W1', h.underlayIp]);
      expect({ host: h.name, code: r.code }).toEqual({ host: h.name, code: 0 });
      const routes = await ipJson(L(), h.name, ['route', 'show', 'default']);
      expect(routes).toEqual([expect.objectContaining({ gateway: s.outsideIp, dev: 'eth0' })]);
    }
    // only the underlay's own routes: nothing toward instance networks, no default
    const routes = JSON.parse((await inOutside(L(), ['ip', '-j', 'route', 'show'])).stdout);
    expect(routes.map((r: any) => r.dst)).toEqual([s.underlay]);
    const fwd = await inOutside(L(), ['sysctl', '-n', 'net.ipv4.ip_forward']);
    expect(fwd.stdout.trim()).toBe('0');
    // a host reaches the internet address itself (its own source: no NAT involved)
    const fromHost = await tcpConnect(hostNs(L(), 'h1'), internet(), INTERNET_PORT);
    expect(fromHost).toMatchObject({ ok: true, data: underlayIp('h1') });
  });

  it("lab: the default route is not the agent's: it survives drift checks and an agent restart", async () => {
    await stopAgent(L().state, 'h3');
    const { state } = await labUp({
      dir: L().dir,
      prefix: L().prefix,
      hosts: 3,
      controllerUrl: L().t.url,
      adminToken: ADMIN_TOKEN,
    });
    L().state = state;
    await sleep(2500); // more than two drift intervals of the restarted agent
    for (const h of HOSTS) {
      const routes = await ipJson(L(), h, ['route', 'show', 'default']);
      expect({ host: h, routes }).toEqual({
        host: h,
        routes: [expect.objectContaining({ gateway: L().state.outsideIp })],
      });
    }
    expect(await agentErrors(L())).toEqual([]);
  }, 60_000);

  it('egress: instances of natOutgoing networks reach the internet as their host; others do not', async () => {
    await create(L(), '/networks', {
      name: 'nat-br',
      model: 'bridge',
      cidr: '10.80.0.0/24',
      natOutgoing: true,
    });
    await create(L(), '/networks', {
      name: 'nat-ov',
      model: 'overlay',
      cidr: '10.81.0.0/24',
      natOutgoing: true,
    });
    await create(L(), '/networks', {
      name: 'nat-rt',
      model: 'routed',
      routing: 'static',
      cidr: '10.82.0.0/16',
      natOutgoing: true,
    });
    await create(L(), '/networks', {
      name: 'nat-vl',
      model: 'vlan',
      cidr: '10.87.0.0/24',
      natOutgoing: true,
    });
    await create(L(), '/networks', {
      name: 'nat-fab',
      model: 'fabric',
      cidr: '10.88.0.0/24',
      natOutgoing: true,
    });
    await create(L(), '/networks', {
      name: 'nat-bgp',
      model: 'routed',
      routing: 'bgp',
      cidr: '10.89.0.0/16',
      natOutgoing: true,
    });
    await create(L(), '/networks', { name: 'plain-ov', model: 'overlay', cidr: '10.83.0.0/24' });
    await create(L(), '/networks', {
      name: 'plain-rt',
      model: 'routed',
      routing: 'static',
      cidr: '10.84.0.0/16',
    });
    const views = (await L().t.get('/networks?limit=100').expect(200)).body.items as any[];
    expect(Object.fromEntries(views.map((n) => [n.name, n.natOutgoing]))).toEqual({
      'nat-br': true,
      'nat-ov': true,
      'nat-rt': true,
      'nat-vl': true,
      'nat-fab': true,
      'nat-bgp': true,
      'plain-ov': false,
      'plain-rt': false,
    });
    // Each on another host: the source is the instance's own host.
    const br1 = await inst('natbr1', 'nat-br', 'h1');
    const ov2 = await inst('natov2', 'nat-ov', 'h2');
    const ov3 = await inst('natov3', 'nat-ov', 'h3');
    const rt3 = await inst('natrt3', 'nat-rt', 'h3');
    const vl1 = await inst('natvl1', 'nat-vl', 'h1');
    const fab2 = await inst('natfab2', 'nat-fab', 'h2');
    const bgp1 = await inst('natbgp1', 'nat-bgp', 'h1');
    const po1 = await inst('plainov1', 'plain-ov', 'h1');
    const pr2 = await inst('plainrt2', 'plain-rt', 'h2');
    const pr3 = await inst('plainrt3', 'plain-rt', 'h3');
    try {
      await expectInternetAs(br1.name, underlayIp('h1'));
      await expectInternetAs(ov2.name, underlayIp('h2'));
      await expectInternetAs(ov3.name, underlayIp('h3'));
      await expectInternetAs(rt3.name, underlayIp('h3'));
      await expectInternetAs(vl1.name, underlayIp('h1'));
      await expectInternetAs(fab2.name, underlayIp('h2'));
      await expectInternetAs(bgp1.name, underlayIp('h1'));
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await evidence('h2')}`);
    }
    // without natOutgoing: no way out (a routed instance has a default route to its host)
    await expectNoInternet(po1.name);
    await expectNoInternet(pr2.name);
    // the networks themselves still work…
    expect(await ping(L(), ov2.name, ov3.ip)).toBe(true);
    await eventually(`${pr2.name} reaches ${pr3.ip}`, () => ping(L(), pr2.name, pr3.ip), 5000, 50);
    // …and stay isolated from each other, NAT or not, same host or not
    await expectUnreachable(L(), br1.name, po1.ip); // same host h1
    await expectUnreachable(L(), po1.name, br1.ip);
    await expectUnreachable(L(), ov2.name, pr2.ip); // same host h2
    await expectUnreachable(L(), pr2.name, ov2.ip);
    await expectUnreachable(L(), rt3.name, pr3.ip); // same host h3, both routed
    await expectUnreachable(L(), pr3.name, rt3.ip);
    await expectUnreachable(L(), rt3.name, ov3.ip); // two natOutgoing networks
    await expectUnreachable(L(), ov3.name, br1.ip);
    await expectUnreachable(L(), vl1.name, po1.ip); // same host h1, VLAN and overlay
    await expectUnreachable(L(), bgp1.name, vl1.ip); // same host h1, two natOutgoing networks
    await expectUnreachable(L(), fab2.name, pr2.ip); // same host h2
    expect(await outsideSources(L(), 'foreign')).toEqual([]);
  }, 90_000);

  it('egress: PATCH natOutgoing false cuts the way out, true restores it', async () => {
    const off = await L().t.patch(`/networks/nat-ov${W}`, { natOutgoing: false });
    expect(off.status).toBe(200);
    expect(off.body).toMatchObject({ name: 'nat-ov', natOutgoing: false });
    await expectNoInternet('natov2');
    await expectNoInternet('natov3');
    // the other natOutgoing networks keep theirs
    expect(await toInternet('natbr1')).toMatchObject({ ok: true, data: underlayIp('h1') });
    const on = await L().t.patch(`/networks/nat-ov${W}`, { natOutgoing: true });
    expect(on.status).toBe(200);
    expect(on.body).toMatchObject({ name: 'nat-ov', natOutgoing: true });
    await expectInternetAs('natov2', underlayIp('h2'));
    await expectInternetAs('natov3', underlayIp('h3'));
    expect(await outsideSources(L(), 'foreign')).toEqual([]);
  }, 60_000);

  it('floating IP: reachable from outside, the source of outbound traffic, follows a move, gone on delete', async () => {
    const pool = await create(L(), '/floating-ip-pools', { name: 'lab', cidr: POOL });
    expect(pool).toMatchObject({ name: 'lab', cidr: POOL, used: 0 });
    await create(L(), '/networks', { name: 'pub', model: 'overlay', cidr: '10.85.0.0/24' });
    const p1 = await inst('pub1', 'pub', 'h1');
    const p3 = await inst('pub3', 'pub', 'h3');
    await expectNoInternet(p1.name); // no natOutgoing, no floating IP yet
    const fip = (await create(L(), '/floating-ips', { pool: 'lab', instance: p1.name })) as {
      id: string;
      address: string;
      instance: string;
      hostId: string;
    };
    expect(fip).toMatchObject({ pool: 'lab', instance: p1.name });
    const F = fip.address;
    expect(contains(parseCidr(POOL)!, ipToInt(F))).toBe(true);
    const onHost = async (h: string) => (await hostAddrs(h)).some((a) => a.local === F);
    expect(await onHost('h1')).toBe(true);
    expect((await hostAddrs('h1')).find((a) => a.local === F)).toMatchObject({ label: 'eth0:lt' });

    // inbound: the outside connects to the floating IP; the instance sees the outside's address
    let srv = await startTcpEcho(instanceNs(L(), p1.name), INSTANCE_PORT);
    const outside = outsideNs(L());
    let inbound: Awaited<ReturnType<typeof tcpConnect>> | undefined;
    try {
      await eventually(
        `the outside reaches ${F}:${INSTANCE_PORT}`,
        async () => (inbound = await tcpConnect(outside, F, INSTANCE_PORT, 1000)).ok,
        10_000,
        50,
      );
    } catch (e) {
      throw new Error(
        `${(e as Error).message}: ${JSON.stringify(inbound)}\n${await evidence('h1')}`,
      );
    }
    expect(inbound).toMatchObject({ ok: true, data: L().state.outsideIp });
    console.log(
      `floating IP: the outside reaches ${F} (→ ${p1.ip} on h1), the instance sees ${inbound!.data}`,
    );
    // outbound: the instance (no natOutgoing) reaches the internet as its floating IP
    await expectInternetAs(p1.name, F);
    // the network itself is untouched
    expect(await ping(L(), p1.name, p3.ip)).toBe(true);

    // mobility: the instance moves to h2; its floating IP follows
    await srv.stop(); // its namespace is about to be re-made on h2
    const sent = Date.now();
    const moved = await L().t.patch(`/instances/${p1.name}${W}`, { host: 'h2' });
    const t0 = Date.now();
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ host: 'h2', ip: p1.ip });
    const icmp = (async () => {
      // an echo every 50 ms until the first reply (ping exits on it), at most 10 s
      const r = await inOutside(L(), ['ping', '-n', '-q', '-c1', '-i0.05', '-w10', F]);
      return r.code === 0 ? Date.now() - t0 : null;
    })();
    const tcp = (async () => {
      srv = await startTcpEcho(instanceNs(L(), p1.name), INSTANCE_PORT);
      const listenMs = Date.now() - t0;
      const r = await tcpProbe(outside, F, INSTANCE_PORT, { intervalMs: 50, maxMs: 10_000 });
      return { listenMs, ms: r.at === null ? null : r.at - t0, attempts: r.attempts, data: r.data };
    })();
    const [icmpMs, tcpR] = await Promise.all([icmp, tcp]);
    console.log(
      `floating IP mobility h1 → h2: PATCH sent → answered (wait=applied): ${t0 - sent} ms; ` +
        `PATCH answered (wait=applied) → first echo reply from ` +
        `outside to ${F}: ${icmpMs ?? 'none'} ms; first TCP answer: ${tcpR.ms ?? 'none'} ms ` +
        `(${tcpR.attempts} attempts, 50 ms apart; the server in the new namespace listened ` +
        `after ${tcpR.listenMs} ms); the instance saw ${tcpR.data}`,
    );
    if (icmpMs === null || tcpR.ms === null) {
      throw new Error(
        `the floating IP is not reachable within 10 s of the move\n${await evidence('h2')}`,
      );
    }
    expect(tcpR.ms).toBeLessThan(10_000);
    expect(await onHost('h2')).toBe(true);
    expect(await onHost('h1')).toBe(false);
    await expectInternetAs(p1.name, F);
    const view = (await L().t.get(`/floating-ips/${F}`).expect(200)).body;
    expect(view).toMatchObject({ address: F, instance: p1.name });

    // delete: no way in, and (no natOutgoing) no way out
    await L().t.del(`/floating-ips/${F}${W}`).expect(200);
    expect(await onHost('h2')).toBe(false);
    const after = await tcpConnect(outside, F, INSTANCE_PORT, CONNECT_MS);
    expect(after).toMatchObject({ ok: false });
    const echo = await inOutside(L(), ['ping', '-n', '-q', '-c2', '-i0.2', '-W1', F]);
    expect(echo.code).not.toBe(0);
    await expectNoInternet(p1.name);
    await srv.stop();
    await L().t.del(`/floating-ip-pools/lab${W}`).expect(200);
    expect(await outsideSources(L(), 'foreign')).toEqual([]);
  }, 90_000);

  it('floating IP on a BGP host: announced as a /32 to the BGP peers, withdrawn on release', async () => {
    const pool = await create(L(), '/floating-ip-pools', { name: 'bgp', cidr: BGP_POOL });
    expect(pool).toMatchObject({ cidr: BGP_POOL });
    await create(L(), '/networks', {
      name: 'bgp-pub',
      model: 'routed',
      routing: 'bgp',
      cidr: '10.90.0.0/16',
    });
    const b1 = await inst('bgppub1', 'bgp-pub', 'h1');
    await inst('bgppub2', 'bgp-pub', 'h2');
    const fip = (await create(L(), '/floating-ips', { pool: 'bgp', instance: b1.name })) as {
      address: string;
    };
    const F = fip.address;
    const learned = async (h: string) =>
      (await ipJson<{ dst: string }[]>(L(), h, ['route', 'show', 'proto', 'bird'])).filter(
        (r) => r.dst === F,
      );
    // h2 speaks BGP with h1 and learns where the floating IP lives
    await eventually(
      `h2 learns ${F}/32 from BIRD`,
      async () => (await learned('h2')).length === 1,
      20_000,
      200,
    );
    expect(await learned('h2')).toEqual([
      expect.objectContaining({ dst: F, gateway: underlayIp('h1') }),
    ]);
    expect(await learned('h1')).toEqual([]); // its own, not learned
    const srv = await startTcpEcho(instanceNs(L(), b1.name), INSTANCE_PORT);
    await eventually(
      `the outside reaches ${F}:${INSTANCE_PORT}`,
      async () => (await tcpConnect(outsideNs(L()), F, INSTANCE_PORT, 1000)).ok,
      10_000,
      50,
    );
    await expectInternetAs(b1.name, F);
    await srv.stop();
    await L().t.del(`/floating-ips/${F}${W}`).expect(200);
    await eventually(
      `h2 withdraws ${F}/32`,
      async () => (await learned('h2')).length === 0,
      20_000,
      200,
    );
    await L().t.del(`/floating-ip-pools/bgp${W}`).expect(200);
  }, 60_000);

  it('the outside only ever saw host underlay addresses and floating IPs; no agent errors', async () => {
    const seen = await outsideSources(L(), 'seen');
    console.log(`the outside saw these sources: ${seen.join(', ')}`);
    expect(await outsideSources(L(), 'foreign')).toEqual([]);
    const hostIps = new Set(L().state.hosts.map((h) => h.underlayIp));
    const pools = [POOL, BGP_POOL].map((c) => parseCidr(c)!);
    const unexpected = seen.filter(
      (ip) => !hostIps.has(ip) && !pools.some((p) => contains(p, ipToInt(ip))),
    );
    expect(unexpected).toEqual([]);
    expect(await agentErrors(L())).toEqual([]);
  });
});
