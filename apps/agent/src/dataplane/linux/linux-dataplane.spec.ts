/**
 * The linux data plane against a real kernel: a throw-away host namespace `ltt-<random>`
 * (never connected to a real interface), instance namespaces behind it, real pings.
 * Skipped with a message where namespaces cannot be created (no CAP_NET_ADMIN); the nft
 * and BIRD parts are skipped when those binaries are missing. Network policy is checked with
 * real TCP connections: a tiny `node:net` listener and client run inside the instance
 * namespaces (`ip netns exec`), killed in afterAll.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diff } from '../../../../../libs/engine/src/diff.js';
import { resource, type Resource } from '../../../../../libs/engine/src/resources.js';
import type { CommandResult, CommandRunner } from './commands.js';
import { LinuxDataplane } from './linux-dataplane.js';

const suffix = randomBytes(3).toString('hex');
const HOST = `ltt-${suffix}`;
const INST_PREFIX = `ltt-${suffix}-i`;

function sh(argv: string[]): { code: number; out: string } {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  return { code: r.status ?? 1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}
const has = (bin: string) => sh(['sh', '-c', `command -v ${bin}`]).code === 0;

const canNetns = (() => {
  const probe = `ltt-${suffix}-probe`;
  const ok = sh(['ip', 'netns', 'add', probe]).code === 0;
  if (ok) sh(['ip', 'netns', 'del', probe]);
  return ok;
})();
if (!canNetns) {
  console.warn('linux-dataplane.spec: `ip netns add` fails (no CAP_NET_ADMIN?): skipped');
}
const HAS_PING = has('ping');
const HAS_NFT = has('nft');
const HAS_BIRD = has('bird') && has('birdc');
const HAS_ARPING = has('arping');
for (const [ok, what] of [
  [HAS_PING, 'ping (iputils-ping)'],
  [HAS_NFT, 'nft (nftables)'],
  [HAS_BIRD, 'bird/birdc (bird2)'],
  [HAS_ARPING, 'arping (iputils-arping)'],
] as const) {
  if (canNetns && !ok)
    console.warn(`linux-dataplane.spec: ${what} not installed: its checks are skipped`);
}

const d = canNetns ? describe : describe.skip;

/** Processes started inside the lab namespaces: killed before the namespaces go. */
const children: ChildProcess[] = [];

/** Accepts (and closes) TCP connections on the ports given as arguments; says when ready. */
const LISTENER = `
const ports = process.argv.slice(1).map(Number);
let ready = 0;
for (const port of ports)
  require('node:net').createServer((s) => s.end()).listen(port, '0.0.0.0', () => {
    if (++ready === ports.length) console.log('listening');
  });
`;

/** Connects to argv[1]:argv[2] and prints open, timeout (1 s: a policy drop) or the error. */
const CLIENT = `
const s = require('node:net').connect({ host: process.argv[1], port: Number(process.argv[2]), timeout: 1000 });
s.on('connect', () => { console.log('open'); process.exit(0); });
s.on('timeout', () => { console.log('timeout'); process.exit(2); });
s.on('error', (e) => { console.log(e.code); process.exit(1); });
`;

/** Answers each TCP connection with the source address it sees (after any NAT). */
const WHOAMI_SERVER = `
const ports = process.argv.slice(1).map(Number);
let ready = 0;
for (const port of ports)
  require('node:net').createServer((s) => s.end(s.remoteAddress)).listen(port, '0.0.0.0', () => {
    if (++ready === ports.length) console.log('listening');
  });
`;

/** Connects to argv[1]:argv[2], prints what the server says, or timeout / the error. */
const WHOAMI_CLIENT = `
let seen = '';
const s = require('node:net').connect({ host: process.argv[1], port: Number(process.argv[2]), timeout: 1000 });
s.on('data', (b) => (seen += b));
s.on('end', () => { console.log(seen); process.exit(0); });
s.on('timeout', () => { console.log('timeout'); process.exit(2); });
s.on('error', (e) => { console.log(e.code); process.exit(1); });
`;

/** Starts `script` (LISTENER) inside `ns`; resolves once it listens on every port. */
function startListener(ns: string, ports: readonly number[], script = LISTENER): Promise<void> {
  const child = spawn(
    'ip',
    ['netns', 'exec', ns, process.execPath, '-e', script, ...ports.map(String)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  return new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`listener in ${ns}: ${err}`)), 5000);
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.stdout.on('data', (b: Buffer) => {
      if (b.toString().includes('listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`listener in ${ns} exited ${code}: ${err}`));
    });
  });
}

/** One TCP connection attempt from inside `ns`: 'open', 'timeout' or an error code. */
const tcpConnect = (ns: string, host: string, port: number, script = CLIENT) =>
  spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-e', script, host, String(port)], {
    encoding: 'utf8',
    timeout: 10_000,
  }).stdout.trim();

const BR = 'ltbr-t1';
const VX = 'ltvx4242';
const VETH1 = 'ltv00000000001';
const VETH2 = 'ltv00000000002';
const UNDERLAY = 'ul0'; // not owned: the agent must never touch it

const port = (veth: string, name: string, n: number) =>
  resource('port', {
    instance: `i${n}`,
    name,
    network: 'net1',
    bridge: BR,
    veth,
    mac: `02:00:00:00:00:1${n}`,
    address: `10.50.0.1${n}/24`,
    gateway: '10.50.0.1',
    mtu: 1450,
    flags: null,
  });

const base: Resource[] = [
  resource('sysctl', { name: 'net.ipv4.ip_forward', value: '1' }),
  resource('bridge', { name: BR, network: 'net1', mtu: 1450, mac: '0e:00:00:00:00:01' }),
  resource('vxlan', {
    name: VX,
    vni: 4242,
    local: '192.0.2.1',
    dstport: 4789,
    dev: UNDERLAY,
    learning: false,
    proxy: false,
    master: BR,
    mtu: 1450,
    flags: null,
  }),
  port(VETH1, 'web1', 1),
  port(VETH2, 'web2', 2),
  resource('address', { dev: BR, address: '10.50.0.1/24' }),
  resource('fdb', { dev: VX, mac: '00:00:00:00:00:00', dst: '192.0.2.2', master: false }),
  resource('fdb', { dev: VX, mac: '02:00:00:00:00:21', dst: '192.0.2.2', master: false }),
  resource('fdb', { dev: VETH1, mac: '02:00:00:00:00:11', dst: null, master: true }),
  resource('neigh', { dev: BR, ip: '10.50.0.21', lladdr: '02:00:00:00:00:21' }),
  resource('route', { dst: '10.60.0.0/24', via: '192.0.2.2', dev: null, onlink: false }),
  ...(HAS_NFT
    ? [resource('filter', { network: 'net1', bridge: BR, accept: ['10.60.0.0/24'], snat: null })]
    : []),
];
const stateOf = (rs: readonly Resource[]) => new Map(rs.map((r) => [r.key, r]));

d('LinuxDataplane on a real kernel', () => {
  let stateDir: string;
  let dp: LinuxDataplane;

  beforeAll(() => {
    stateDir = mkdtempSync(join(tmpdir(), 'ltt-dp-'));
    execFileSync('ip', ['netns', 'add', HOST]);
    // The underlay: a veth pair inside the host namespace only.
    execFileSync('ip', [
      '-n',
      HOST,
      'link',
      'add',
      UNDERLAY,
      'type',
      'veth',
      'peer',
      'name',
      'ul1',
    ]);
    execFileSync('ip', ['-n', HOST, 'addr', 'add', '192.0.2.1/24', 'dev', UNDERLAY]);
    execFileSync('ip', ['-n', HOST, 'link', 'set', UNDERLAY, 'up']);
    execFileSync('ip', ['-n', HOST, 'link', 'set', 'ul1', 'up']);
    dp = new LinuxDataplane({
      netns: HOST,
      instanceNetnsPrefix: INST_PREFIX,
      uplink: UNDERLAY,
      stateDir,
    });
  });

  afterAll(async () => {
    await dp?.close();
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGKILL');
          }),
      ),
    );
    const pid = (() => {
      try {
        return Number(readFileSync(join(stateDir, 'bird.pid'), 'utf8').trim());
      } catch {
        return 0;
      }
    })();
    if (pid > 0) {
      try {
        process.kill(pid);
      } catch {
        /* already gone */
      }
    }
    const list = sh(['ip', '-j', 'netns', 'list']).out.trim();
    const names = list ? (JSON.parse(list) as { name: string }[]).map((n) => n.name) : [];
    for (const n of names)
      if (n === HOST || n.startsWith(`${HOST}-`)) sh(['ip', 'netns', 'del', n]);
    rmSync(stateDir, { recursive: true, force: true });
  });

  const inHost = (...args: string[]) => sh(['ip', '-n', HOST, ...args]);
  const ping = (ns: string, ip: string) =>
    sh(['ip', 'netns', 'exec', ns, 'ping', '-c1', '-W1', ip]).code === 0;

  it('applies a realistic desired state; instances on one bridge reach each other', async () => {
    const errors = await dp.apply(diff(new Map(), stateOf(base)));
    expect(errors).toEqual([]);
    expect(inHost('link', 'show', VX).out).toContain(`master ${BR}`);
    expect(
      sh(['ip', 'netns', 'exec', HOST, 'sysctl', '-n', 'net.ipv4.ip_forward']).out.trim(),
    ).toBe('1');
    expect(sh(['bridge', '-n', HOST, 'fdb', 'show', 'dev', VX]).out).toContain(
      '02:00:00:00:00:21 dst 192.0.2.2',
    );
    expect(inHost('route', 'show', '10.60.0.0/24').out).toContain('via 192.0.2.2');
    if (HAS_PING) {
      expect(ping(`${INST_PREFIX}-web1`, '10.50.0.12')).toBe(true);
      expect(ping(`${INST_PREFIX}-web2`, '10.50.0.1')).toBe(true);
    }
    expect(await dp.checkDrift(stateOf(base))).toEqual([]);
  });

  it('applying the same diff twice is harmless', async () => {
    const again = diff(new Map(), stateOf(base));
    expect(await dp.apply(again)).toEqual([]);
    expect(await dp.checkDrift(stateOf(base))).toEqual([]);
    if (HAS_PING) expect(ping(`${INST_PREFIX}-web1`, '10.50.0.12')).toBe(true);
  });

  it('attributes failures to their resources and applies the rest', async () => {
    const extra = [
      resource('address', { dev: BR, address: '10.50.1.1/24' }),
      // Unreachable gateway: the kernel refuses this line of the batch.
      resource('route', { dst: '10.70.0.0/24', via: '10.99.0.1', dev: null, onlink: false }),
      // Device missing: refused before the batch.
      resource('fdb', { dev: 'ltvx9', mac: '02:00:00:00:00:99', dst: '192.0.2.9', master: false }),
      resource('neigh', { dev: BR, ip: '10.50.1.9', lladdr: 'not-a-mac' }),
      resource('neigh', { dev: BR, ip: '10.50.1.8', lladdr: '02:00:00:00:00:88' }),
      // A malformed gateway makes iproute2 exit mid-batch even with -force: the lines
      // after it must still be applied (retried one resource at a time).
      resource('route', { dst: '10.71.0.0/24', via: 'bogus', dev: null, onlink: false }),
      resource('route', { dst: '10.72.0.0/24', via: '192.0.2.2', dev: null, onlink: false }),
    ];
    const errors = await dp.apply(diff(stateOf(base), stateOf([...base, ...extra])));
    expect(errors.map((e) => e.key).sort()).toEqual([
      'fdb:ltvx9:02:00:00:00:00:99',
      'neigh:ltbr-t1:10.50.1.9',
      'route:10.70.0.0/24',
      'route:10.71.0.0/24',
    ]);
    expect(inHost('route', 'show', '10.72.0.0/24').out).toContain('via 192.0.2.2');
    expect(inHost('addr', 'show', 'dev', BR).out).toContain('10.50.1.1/24');
    expect(inHost('neigh', 'show', '10.50.1.8', 'dev', BR).out).toContain('02:00:00:00:00:88');
    expect(await dp.apply(diff(stateOf([...base, ...extra]), stateOf(base)))).toEqual([]);
    expect(inHost('addr', 'show', 'dev', BR).out).not.toContain('10.50.1.1/24');
  });

  it('reports and repairs a deleted FDB entry and route', async () => {
    sh(['bridge', '-n', HOST, 'fdb', 'del', '02:00:00:00:00:21', 'dev', VX, 'dst', '192.0.2.2']);
    inHost('route', 'del', '10.60.0.0/24');
    const drift = await dp.checkDrift(stateOf(base));
    expect(drift.map((x) => [x.key, x.repaired]).sort()).toEqual([
      [`fdb:${VX}:02:00:00:00:00:21`, true],
      ['route:10.60.0.0/24', true],
    ]);
    expect(await dp.checkDrift(stateOf(base))).toEqual([]);
  });

  it('does not remove stale owned objects before the first complete sync', async () => {
    inHost('link', 'add', 'ltbr-zz', 'type', 'bridge');
    inHost('link', 'add', 'foo0', 'type', 'bridge'); // not owned
    const drift = await dp.checkDrift(stateOf(base));
    expect(drift).toEqual([
      { key: 'bridge:ltbr-zz', message: 'stale bridge ltbr-zz', repaired: false },
    ]);
    expect(inHost('link', 'show', 'ltbr-zz').code).toBe(0);
  });

  it('sync with a smaller set removes the stale owned objects only', async () => {
    const smaller = base.filter(
      (r) => r.key !== `port:${VETH2}` && r.kind !== 'route' && r.kind !== 'neigh',
    );
    expect(await dp.sync(smaller)).toEqual([]);
    expect(inHost('link', 'show', 'ltbr-zz').code).not.toBe(0);
    expect(inHost('link', 'show', VETH2).code).not.toBe(0);
    expect(inHost('link', 'show', 'foo0').code).toBe(0);
    expect(inHost('route', 'show', '10.60.0.0/24').out.trim()).toBe('');
    expect(inHost('neigh', 'show', '10.50.0.21', 'dev', BR).out.trim()).toBe('');
    expect(sh(['ip', 'netns', 'list']).out).not.toContain(`${INST_PREFIX}-web2`);
    expect(await dp.checkDrift(stateOf(smaller))).toEqual([]);
    if (HAS_PING) expect(ping(`${INST_PREFIX}-web1`, '10.50.0.1')).toBe(true);
  });

  (HAS_NFT ? it : it.skip)(
    'keeps the nftables table and repairs it when changed by hand',
    async () => {
      const desired = base.filter((r) => r.key !== `port:${VETH2}`);
      await dp.sync(desired);
      const list = sh(['ip', 'netns', 'exec', HOST, 'nft', 'list', 'table', 'inet', 'lattice']).out;
      expect(list).toContain(`iifname "${BR}" drop`);
      sh(['ip', 'netns', 'exec', HOST, 'nft', 'flush', 'chain', 'inet', 'lattice', 'forward']);
      const drift = await dp.checkDrift(stateOf(desired));
      expect(drift).toEqual([
        {
          key: `filter:${BR}`,
          message: 'table inet lattice changed in the kernel',
          repaired: true,
        },
      ]);
      expect(await dp.checkDrift(stateOf(desired))).toEqual([]);
    },
  );

  (HAS_BIRD ? it : it.skip)('starts, reconfigures and stops BIRD', async () => {
    const bgp = (announce: string[]) =>
      resource('bgp', {
        asn: 64512,
        routerId: '192.0.2.1',
        routeReflector: true,
        announce,
        interfaces: [BR],
        peers: [{ address: '192.0.2.2', asn: 64512, rrClient: true }],
      });
    const s1 = stateOf([...base.filter((r) => r.key !== `port:${VETH2}`), bgp(['10.50.0.0/24'])]);
    const s0 = stateOf(base.filter((r) => r.key !== `port:${VETH2}`));
    expect(await dp.apply(diff(s0, s1))).toEqual([]);
    const birdc = (...a: string[]) =>
      sh(['ip', 'netns', 'exec', HOST, 'birdc', '-s', join(stateDir, 'bird.ctl'), ...a]);
    expect(birdc('show', 'protocols').out).toContain('peer_192_0_2_2');
    const s2 = stateOf([...s0.values(), bgp(['10.50.0.0/25'])]);
    expect(await dp.apply(diff(s1, s2))).toEqual([]);
    expect(readFileSync(join(stateDir, 'bird.conf'), 'utf8')).toContain('10.50.0.0/25');
    expect(await dp.checkDrift(s2)).toEqual([]);
    expect(await dp.apply(diff(s2, s0))).toEqual([]);
    // `birdc down` returns before the daemon has exited.
    for (let i = 0; i < 50 && birdc('show', 'status').code === 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(birdc('show', 'status').code).not.toBe(0);
  });

  // Instance web2 (B) accepts, as new connections, only TCP 8080 from the members of one set
  // (web1, A). web1 is selected by nothing: unrestricted in both directions.
  (HAS_NFT && HAS_PING ? it : it.skip)(
    'enforces a policy with real packets, repairs its table, lifts it when removed',
    async () => {
      const A = `${INST_PREFIX}-web1`;
      const B = `${INST_PREFIX}-web2`;
      const SET = 'ps_0000000000aa';
      const policyB = resource('policy', {
        instance: 'i2',
        name: 'web2',
        network: 'net1',
        bridge: BR,
        veth: VETH2,
        address: '10.50.0.12',
        ingress: [
          {
            policy: 'allow-web1',
            policyId: 'p1',
            rule: 0,
            peers: [{ set: SET }],
            ports: [{ protocol: 'tcp', port: 8080, endPort: null }],
          },
        ],
        egress: null,
      });
      const member = resource('pmember', { set: SET, address: '10.50.0.11' });
      const withPolicy = stateOf([...base, policyB, member]);
      expect(await dp.sync([...withPolicy.values()])).toEqual([]);
      await startListener(B, [8080, 8081]);

      expect(tcpConnect(A, '10.50.0.12', 8080)).toBe('open');
      // Dropped, not refused: the listener is there (it answers once the policy is gone).
      expect(tcpConnect(A, '10.50.0.12', 8081)).toBe('timeout');
      expect(ping(A, '10.50.0.12')).toBe(false); // icmp is not allowed into B
      // B's egress is not isolated; the echo reply enters B's chain as established.
      expect(ping(B, '10.50.0.11')).toBe(true);
      expect(await dp.checkDrift(withPolicy)).toEqual([]);

      // Emptied by hand, B's chain would let everything in: detected and reloaded whole.
      sh(['ip', 'netns', 'exec', HOST, 'nft', 'flush', 'chain', 'inet', 'lattice', `in_${VETH2}`]);
      const drift = await dp.checkDrift(withPolicy);
      expect(drift.map((x) => [x.key, x.message, x.repaired]).sort()).toEqual(
        [`filter:${BR}`, member.key, policyB.key].map((key) => [
          key,
          'table inet lattice changed in the kernel',
          true,
        ]),
      );
      expect(await dp.checkDrift(withPolicy)).toEqual([]);
      expect(tcpConnect(A, '10.50.0.12', 8081)).toBe('timeout');
      expect(tcpConnect(A, '10.50.0.12', 8080)).toBe('open');

      const without = stateOf(base);
      expect(await dp.apply(diff(withPolicy, without))).toEqual([]);
      const list = sh(['ip', 'netns', 'exec', HOST, 'nft', 'list', 'table', 'inet', 'lattice']).out;
      expect(list).not.toContain(`in_${VETH2}`);
      expect(list).not.toContain(SET);
      expect(list).toContain(`iifname "${BR}" drop`); // the isolation filter stays
      expect(tcpConnect(A, '10.50.0.12', 8081)).toBe('open');
      expect(ping(A, '10.50.0.12')).toBe(true);
      expect(await dp.checkDrift(without)).toEqual([]);
    },
  );
  // Outside the fleet: namespace X behind HOST's second interface ux0 (198.51.100.0/24).
  // web1 gets a floating IP on ux0; net1 gets egress through ux0's own address.
  (HAS_NFT && HAS_PING ? it : it.skip)(
    'floating IP and egress with real packets; label, gratuitous ARP, stale removal',
    async () => {
      const X = `${HOST}-x`;
      const FIP = '198.51.100.50';
      execFileSync('ip', ['netns', 'add', X]);
      execFileSync('ip', ['-n', HOST, 'link', 'add', 'ux0', 'type', 'veth', 'peer', 'name', 'ux1']);
      execFileSync('ip', ['-n', HOST, 'link', 'set', 'ux1', 'netns', X]);
      execFileSync('ip', ['-n', HOST, 'addr', 'add', '198.51.100.2/24', 'dev', 'ux0']);
      execFileSync('ip', ['-n', HOST, 'link', 'set', 'ux0', 'up']);
      execFileSync('ip', ['-n', X, 'addr', 'add', '198.51.100.1/24', 'dev', 'ux1']);
      execFileSync('ip', ['-n', X, 'link', 'set', 'ux1', 'up']);
      execFileSync('ip', ['-n', X, 'link', 'set', 'lo', 'up']);
      // X still believes the floating IP lives at another MAC (its previous host).
      execFileSync('ip', [
        '-n',
        X,
        'neigh',
        'replace',
        FIP,
        'lladdr',
        '02:00:00:00:00:99',
        'dev',
        'ux1',
        'nud',
        'stale',
      ]);
      await startListener(X, [9000], WHOAMI_SERVER);

      const filter = (snat: string | null) =>
        resource('filter', { network: 'net1', bridge: BR, accept: ['10.60.0.0/24'], snat });
      const fip = resource('fip', {
        address: FIP,
        instance: 'i1',
        name: 'web1',
        network: 'net1',
        bridge: BR,
        ip: '10.50.0.11',
        dev: 'ux0',
      });
      const netset = resource('netset', {
        name: 'internal',
        cidrs: ['10.50.0.0/24', '10.60.0.0/24'],
      });
      const plain = base.filter((r) => r.kind !== 'filter');
      const before = stateOf(base);
      const withNat = stateOf([...plain, filter('198.51.100.2'), netset, fip]);
      expect(await dp.apply(diff(before, withNat))).toEqual([]);
      expect(inHost('addr', 'show', 'dev', 'ux0').out).toContain(
        `inet ${FIP}/32 scope global ux0:lt`,
      );
      if (HAS_ARPING) {
        const mac = (
          JSON.parse(inHost('-j', 'link', 'show', 'ux0').out) as { address: string }[]
        )[0].address;
        expect(sh(['ip', '-n', X, 'neigh', 'show', FIP, 'dev', 'ux1']).out).toContain(mac);
      }
      expect(await dp.checkDrift(withNat)).toEqual([]);

      const whoami = (ns: string) => tcpConnect(ns, '198.51.100.1', 9000, WHOAMI_CLIENT);
      const A = `${INST_PREFIX}-web1`;
      const B = `${INST_PREFIX}-web2`;
      // Out: web1 as its floating IP, web2 as the host (egress).
      expect(whoami(A)).toBe(FIP);
      expect(whoami(B)).toBe('198.51.100.2');
      // In: the floating IP reaches web1.
      if (HAS_PING) expect(ping(X, FIP)).toBe(true);

      // Egress off: web2 cannot leave any more, web1 still can by its floating IP.
      const noEgress = stateOf([...plain, filter(null), netset, fip]);
      expect(await dp.apply(diff(withNat, noEgress))).toEqual([]);
      expect(whoami(B)).toBe('timeout');
      expect(whoami(A)).toBe(FIP);

      // A floating IP address left behind (released while the agent was away) is stale;
      // the host's own address on that interface is not.
      inHost('addr', 'add', '198.51.100.77/32', 'dev', 'ux0', 'label', 'ux0:lt');
      expect(await dp.checkDrift(noEgress)).toEqual([
        {
          key: 'fip:198.51.100.77',
          message: 'stale floating IP 198.51.100.77 on ux0',
          repaired: true,
        },
      ]);
      expect(inHost('addr', 'show', 'dev', 'ux0').out).not.toContain('198.51.100.77');

      // Released: the address and the NAT chains go, the host's address stays.
      expect(await dp.apply(diff(noEgress, before))).toEqual([]);
      const addrs = inHost('addr', 'show', 'dev', 'ux0').out;
      expect(addrs).not.toContain(FIP);
      expect(addrs).toContain('198.51.100.2/24');
      const list = sh(['ip', 'netns', 'exec', HOST, 'nft', 'list', 'table', 'inet', 'lattice']).out;
      expect(list).not.toContain('nat');
      expect(list).not.toContain('internal');
      if (HAS_PING) expect(ping(X, FIP)).toBe(false);
      expect(await dp.checkDrift(before)).toEqual([]);
    },
  );
});

// No kernel needed: what the data plane runs, and in which order, with a scripted runner.
describe('LinuxDataplane floating IP announcement (scripted commands)', () => {
  const fip = (address: string, dev: string) =>
    resource('fip', {
      address,
      instance: 'i1',
      name: 'web1',
      network: 'net1',
      bridge: 'ltbr-aa',
      ip: '10.50.0.11',
      dev,
    });

  it('sends one gratuitous ARP once address and NAT rules are in (in the background); a missing arping is told once', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ltt-dp-'));
    const calls: string[] = [];
    const warnings: string[] = [];
    const ok = (stdout = ''): Promise<CommandResult> =>
      Promise.resolve({ code: 0, stdout, stderr: '' });
    const run: CommandRunner = (argv, input) => {
      const cmd = argv.join(' ');
      calls.push(input ? `${cmd} < ${input.trim()}` : cmd);
      if (cmd === 'ip -n h1 -j link show') {
        return ok(JSON.stringify([{ ifname: 'eth0' }, { ifname: 'ltbr-aa' }]));
      }
      if (argv.includes('arping')) {
        // What `ip netns exec` says when the binary is missing.
        const stderr = 'exec of "arping" failed: No such file or directory';
        return Promise.resolve({ code: 1, stdout: '', stderr });
      }
      return ok();
    };
    try {
      const dp = new LinuxDataplane({
        netns: 'h1',
        instanceNetnsPrefix: 'h1-i',
        uplink: 'eth0',
        stateDir,
        run,
        warn: (m) => warnings.push(m),
      });
      const one = stateOf([fip('203.0.113.2', 'eth0')]);
      expect(await dp.apply(diff(new Map(), one))).toEqual([]);
      await dp.close(); // the ARPs go out in the background; close waits for them
      const nft = `ip netns exec h1 nft -f ${join(stateDir, 'lattice.nft')}`;
      const steps = calls.filter((c) => /batch|nft -f|arping/.test(c));
      expect(steps).toEqual([
        'ip -n h1 -force -batch - < addr replace 203.0.113.2/32 dev eth0 label eth0:lt',
        nft,
        'ip netns exec h1 arping -U -c 1 -I eth0 203.0.113.2',
      ]);
      // Another floating IP, and one whose uplink does not exist: no ARP for that one.
      calls.length = 0;
      const three = stateOf([
        ...one.values(),
        fip('203.0.113.3', 'eth0'),
        fip('203.0.113.4', 'eth9'),
      ]);
      expect(await dp.apply(diff(one, three))).toEqual([
        { key: 'fip:203.0.113.4', message: 'device eth9 does not exist' },
      ]);
      await dp.close();
      expect(calls.filter((c) => c.includes('arping'))).toEqual([
        'ip netns exec h1 arping -U -c 1 -I eth0 203.0.113.3',
      ]);
      expect(warnings).toEqual([
        'arping not installed (iputils-arping): floating IPs are not announced',
      ]);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
