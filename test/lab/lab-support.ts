/**
 * Shared pieces of the real-packet tests: one lab per test file (built by the same module
 * as `npm run lab`), on a controller of its own, and ping helpers.
 */
import { describe, it } from '@jest/globals';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labDown, labUp, type LabState } from '../../lab/src/lab.js';
import { run } from '../../lab/src/shell.js';
import { ADMIN_TOKEN, startController, type TestController } from '../support/controller.js';

/** The VLAN pool the lab pre-wires: the controller must hand out exactly these ids. */
export const LAB_ENV = { LATTICE_VLAN_POOL: '100-109', LATTICE_LOG_LEVEL: 'error' };

/**
 * Whether this machine lets us build a lab: `ip netns add` as the current user, veths, and
 * the tools the models need. Synchronous, so that test files can pick `describe.skip`.
 */
function probe(): string | null {
  const name = `ltprobe${randomBytes(3).toString('hex')}`;
  const add = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  if (add.error) return `iproute2 is missing (${add.error.message})`;
  if (add.status !== 0) return `\`ip netns add\` fails as this user: ${add.stderr.trim()}`;
  try {
    const veth = spawnSync(
      'ip',
      ['-n', name, 'link', 'add', 'name', 'probe0', 'type', 'veth', 'peer', 'name', 'probe1'],
      { encoding: 'utf8' },
    );
    if (veth.status !== 0) return `cannot create veth pairs: ${veth.stderr.trim()}`;
  } finally {
    spawnSync('ip', ['netns', 'del', name]);
  }
  for (const [tool, pkg] of [
    ['ping', 'iputils-ping'],
    ['bird', 'bird2'],
    ['nft', 'nftables'],
  ]) {
    const r = spawnSync('sh', ['-c', `command -v ${tool}`]);
    if (r.status !== 0) return `${tool} is not installed (apt-get install ${pkg})`;
  }
  return null;
}

const unavailable = probe();
const onCi = process.env.CI === 'true';

/**
 * `describe` for a lab test file: skipped with the reason when the machine cannot build a
 * lab, except on CI, where that is a failure.
 */
export function describeLab(name: string, fn: () => void): void {
  if (unavailable === null) {
    describe(name, fn);
    return;
  }
  if (onCi) {
    describe(name, () => {
      it('needs network namespaces (CI=true: they must be available)', () => {
        throw new Error(`real-packet lab tests cannot run: ${unavailable}`);
      });
    });
    return;
  }
  console.warn(`skipping real-packet lab tests (${name}): ${unavailable}`);
  describe.skip(name, fn);
}

export interface Lab {
  t: TestController;
  state: LabState;
  dir: string;
  /** `lt` + 3 hex: short, unique per file. */
  prefix: string;
  upMs: number;
}

/** A controller on a fresh database, and a lab of `hosts` hosts on it. */
export async function startLab(hosts = 3, controllerOpts: { port?: number } = {}): Promise<Lab> {
  const prefix = `lt${randomBytes(2).toString('hex').slice(0, 3)}`;
  const dir = mkdtempSync(join(tmpdir(), `lattice-lab-${prefix}-`));
  const t = await startController({ env: LAB_ENV, ...controllerOpts });
  const lab: Lab = { t, state: undefined as unknown as LabState, dir, prefix, upMs: 0 };
  try {
    const { state, elapsedMs } = await labUp({
      dir,
      prefix,
      hosts,
      controllerUrl: t.url,
      adminToken: ADMIN_TOKEN,
    });
    lab.state = state;
    lab.upMs = elapsedMs;
    console.log(`lab ${prefix}: ${hosts} hosts up, agents in sync in ${elapsedMs} ms`);
  } catch (e) {
    await stopLab(lab);
    throw e;
  }
  return lab;
}

/** Always safe: tears down whatever exists (agents, BIRD, namespaces, files), then the controller. */
export async function stopLab(lab: Lab | undefined): Promise<void> {
  if (!lab) return;
  const keep = process.env.LATTICE_LAB_LOGS;
  if (keep) {
    // Agent logs are removed with the lab: keep a copy for debugging.
    const to = join(keep, lab.prefix);
    mkdirSync(to, { recursive: true });
    for (const f of readdirSync(lab.dir)) {
      if (f.endsWith('.log')) copyFileSync(join(lab.dir, f), join(to, f));
    }
  }
  try {
    await labDown({ dir: lab.dir });
  } finally {
    rmSync(lab.dir, { recursive: true, force: true });
    await lab.t.close().catch(() => undefined);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs `argv` inside a namespace. */
export function inNs(ns: string, argv: readonly string[]) {
  return run(['ip', 'netns', 'exec', ns, ...argv]);
}

export function instanceNs(lab: Lab, instance: string): string {
  return `${lab.prefix}-${instance}`;
}

export function hostNs(lab: Lab, host: string): string {
  return `${lab.prefix}-${host}`;
}

/** One ICMP echo from an instance's namespace; true when answered within `waitS`. */
export async function ping(
  lab: Lab,
  from: string,
  ip: string,
  o: { size?: number; df?: boolean; waitS?: number } = {},
): Promise<boolean> {
  const args = ['ping', '-n', '-q', '-c1', '-W', String(o.waitS ?? 1)];
  if (o.df) args.push('-M', 'do');
  if (o.size !== undefined) args.push('-s', String(o.size));
  const r = await inNs(instanceNs(lab, from), [...args, ip]);
  return r.code === 0;
}

/** Polls `check` until it returns true, or fails with `what` after `timeoutMs`. */
export async function eventually(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 10_000,
  intervalMs = 100,
): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await check()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(intervalMs);
  }
}

/** Reachable within `timeoutMs` (ARP, BGP and the like may take a moment). */
export async function expectReachable(
  lab: Lab,
  from: string,
  ip: string,
  timeoutMs = 5000,
): Promise<void> {
  await eventually(`${from} reaches ${ip}`, () => ping(lab, from, ip), timeoutMs, 50);
}

/** Two echoes 200 ms apart (root may use short intervals), neither answered. */
export async function expectUnreachable(lab: Lab, from: string, ip: string): Promise<void> {
  const r = await inNs(instanceNs(lab, from), ['ping', '-n', '-q', '-c2', '-i0.2', '-W1', ip]);
  if (r.code === 0) throw new Error(`${from} reaches ${ip}, but must not:\n${r.stdout}`);
  // No reply (exit 1) or no route (exit 2) is unreachable; a missing namespace proves nothing.
  if (/Cannot open network namespace|unknown host|usage/i.test(r.stderr)) {
    throw new Error(`ping from ${from} to ${ip} could not run: ${r.stderr}`);
  }
}

/** Every ordered pair of instances reaches the other. */
export async function expectMesh(lab: Lab, instances: { name: string; ip: string }[]) {
  for (const a of instances) {
    for (const b of instances) if (a !== b) await expectReachable(lab, a.name, b.ip);
  }
}

/** `ip -n <host> -j <args>` parsed. */
export async function ipJson<T = any>(lab: Lab, host: string, args: string[]): Promise<T> {
  const r = await run(['ip', '-n', hostNs(lab, host), '-j', ...args]);
  if (r.code !== 0) throw new Error(`ip -n ${hostNs(lab, host)} -j ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout || '[]') as T;
}

export async function fdbJson(lab: Lab, host: string): Promise<any[]> {
  const r = await run(['bridge', '-n', hostNs(lab, host), '-j', 'fdb', 'show']);
  if (r.code !== 0) throw new Error(`bridge fdb show: ${r.stderr}`);
  return JSON.parse(r.stdout || '[]') as any[];
}

/** Creates through REST and waits until every affected agent applied it. */
export async function create(lab: Lab, path: string, body: Record<string, unknown>): Promise<any> {
  const res = await lab.t.post(`${path}?wait=applied&timeoutMs=20000`, body);
  if (res.status !== 201) {
    throw new Error(
      `POST ${path} ${JSON.stringify(body)}: ${res.status} ${JSON.stringify(res.body)}`,
    );
  }
  return res.body;
}

/** No agent reports errors. */
export async function agentErrors(lab: Lab): Promise<string[]> {
  const hosts = (await lab.t.get('/hosts').expect(200)).body.items as any[];
  return hosts.flatMap((h) =>
    (h.agent.errors as { key: string; message: string }[]).map(
      (e) => `${h.name}: ${e.key}: ${e.message}`,
    ),
  );
}

// ---- the outside (egress NAT, floating IPs) ---------------------------------------------

/** The lab's outside namespace: the underlay's upstream and "the internet" (lab.ts). */
export function outsideNs(lab: Lab): string {
  return lab.state.outsideNs;
}

/** Runs `argv` inside the outside namespace. */
export function inOutside(lab: Lab, argv: readonly string[]) {
  return inNs(outsideNs(lab), argv);
}

/** Answers every connection with the peer's address as the kernel shows it, then closes. */
const ECHO_SCRIPT = `
const net = require('node:net');
const [ip, port] = process.argv.slice(1);
const srv = net.createServer((s) => { s.on('error', () => {}); s.end(s.remoteAddress); });
srv.on('error', (e) => { console.error(e.message); process.exit(1); });
srv.listen(Number(port), ip, () => console.log('listening'));
process.on('SIGTERM', () => process.exit(0));
`;

/** One connection: prints {ok, data, error}; ok when the server sent something and closed. */
const CONNECT_SCRIPT = `
const net = require('node:net');
const [host, port, ms] = process.argv.slice(1);
let data = '';
const done = (ok, error) => { process.stdout.write(JSON.stringify({ ok, data, error })); process.exit(0); };
setTimeout(() => done(false, 'timeout'), Number(ms));
const s = net.connect({ host, port: Number(port) });
s.on('data', (d) => (data += d));
s.on('end', () => done(data.length > 0, data.length > 0 ? undefined : 'closed without data'));
s.on('error', (e) => done(false, e.code || e.message));
`;

/**
 * A connection attempt every \`interval\` ms (each given up after \`attempt\` ms), until one
 * gets an answer or \`max\` ms passed: prints {ok, at (epoch ms of the answer), data, attempts}.
 */
const PROBE_SCRIPT = `
const net = require('node:net');
const [host, port, interval, attempt, max] = process.argv.slice(1).map((v, i) => (i ? Number(v) : v));
let attempts = 0;
let finished = false;
const done = (r) => {
  if (finished) return;
  finished = true;
  process.stdout.write(JSON.stringify({ ...r, attempts }));
  process.exit(0);
};
const once = () => {
  if (finished) return;
  attempts++;
  let data = '';
  const s = net.connect({ host, port });
  const t = setTimeout(() => s.destroy(), attempt);
  s.on('data', (d) => (data += d));
  s.on('end', () => { clearTimeout(t); if (data) done({ ok: true, at: Date.now(), data }); });
  s.on('error', () => clearTimeout(t));
};
once();
setInterval(once, interval);
setTimeout(() => done({ ok: false, at: null, data: '' }), max);
`;

const children = new Set<ChildProcess>();

export interface TcpEcho {
  readonly ns: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/**
 * A TCP server in `ns` (node, as root in the namespace) on `ip:port` that answers every
 * connection with the address it came from. Resolves once it listens. Stop it before its
 * namespace goes away (an instance moved or deleted): a process keeps a deleted namespace
 * alive, nameless, where `labDown` cannot find it (`stopTcpServers` stops all of them).
 */
export async function startTcpEcho(ns: string, port: number, ip = '0.0.0.0'): Promise<TcpEcho> {
  const child = spawn(
    'ip',
    ['netns', 'exec', ns, process.execPath, '-e', ECHO_SCRIPT, ip, String(port)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.add(child);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  void exited.then(() => children.delete(child));
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`TCP server in ${ns} not listening: ${err}`)),
      5000,
    );
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`TCP server in ${ns} exited (${code}): ${err}`));
    });
  });
  return {
    ns,
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Stops every server `startTcpEcho` started (afterAll, before `stopLab`). */
export async function stopTcpServers(): Promise<void> {
  await Promise.all(
    [...children].map(async (c) => {
      const gone = new Promise<void>((r) => c.once('exit', () => r()));
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
      else return;
      await gone;
    }),
  );
}

export interface TcpResult {
  readonly ok: boolean;
  /** What the server sent: with `startTcpEcho`, the client's address as the server saw it. */
  readonly data: string;
  readonly error?: string;
}

/** One TCP connection from `ns` to `ip:port`, given up after `timeoutMs`. */
export async function tcpConnect(
  ns: string,
  ip: string,
  port: number,
  timeoutMs = 2000,
): Promise<TcpResult> {
  const r = await inNs(ns, [
    process.execPath,
    '-e',
    CONNECT_SCRIPT,
    ip,
    String(port),
    String(timeoutMs),
  ]);
  if (r.code !== 0 || !r.stdout.startsWith('{')) {
    throw new Error(`TCP client in ${ns} could not run (exit ${r.code}): ${r.stderr}`);
  }
  return JSON.parse(r.stdout) as TcpResult;
}

/**
 * Connection attempts from `ns` to `ip:port` every `intervalMs` until one is answered:
 * `at` is the epoch ms of the first answer, null when none came within `maxMs`.
 */
export async function tcpProbe(
  ns: string,
  ip: string,
  port: number,
  o: { intervalMs?: number; attemptMs?: number; maxMs?: number } = {},
): Promise<{ ok: boolean; at: number | null; data: string; attempts: number }> {
  const args = [o.intervalMs ?? 50, o.attemptMs ?? 300, o.maxMs ?? 10_000].map(String);
  const r = await inNs(ns, [process.execPath, '-e', PROBE_SCRIPT, ip, String(port), ...args]);
  if (r.code !== 0 || !r.stdout.startsWith('{')) {
    throw new Error(`TCP probe in ${ns} could not run (exit ${r.code}): ${r.stderr}`);
  }
  return JSON.parse(r.stdout) as { ok: boolean; at: number | null; data: string; attempts: number };
}

const WATCH_TABLE = 'lattice_lab_watch';

/**
 * Records in the outside's nftables the source address of every unicast IPv4 packet it
 * receives on its underlay port: `seen` all of them, `foreign` those outside the underlay
 * (which must never arrive: host addresses and floating IPs are all in the underlay).
 */
export async function watchOutside(lab: Lab): Promise<void> {
  const ruleset = [
    `table ip ${WATCH_TABLE} {`,
    '  set seen { type ipv4_addr; flags dynamic; size 4096; }',
    '  set foreign { type ipv4_addr; flags dynamic; size 4096; }',
    '  chain pre {',
    '    type filter hook prerouting priority raw; policy accept;',
    // unicast to the outside's MAC only: what hosts route or send to it, whatever the
    // destination address (multicast and broadcast on the segment are not traffic to it)
    '    iifname "eth0" meta pkttype host add @seen { ip saddr }',
    `    iifname "eth0" meta pkttype host ip saddr != ${lab.state.underlay} add @foreign { ip saddr }`,
    '  }',
    '}',
  ].join('\n');
  const r = await run(['ip', 'netns', 'exec', outsideNs(lab), 'nft', '-f', '-'], ruleset + '\n');
  if (r.code !== 0) throw new Error(`nft in ${outsideNs(lab)}: ${r.stderr}`);
}

/** The sources `watchOutside` recorded: `seen` or `foreign`, sorted. */
export async function outsideSources(lab: Lab, set: 'seen' | 'foreign'): Promise<string[]> {
  const r = await inOutside(lab, ['nft', '-j', 'list', 'set', 'ip', WATCH_TABLE, set]);
  if (r.code !== 0) throw new Error(`nft list set ${set} in ${outsideNs(lab)}: ${r.stderr}`);
  const items = (JSON.parse(r.stdout) as { nftables: any[] }).nftables;
  const elems = (items.find((x) => x.set)?.set.elem ?? []) as unknown[];
  const ips = elems.map((e) =>
    typeof e === 'string' ? e : String((e as { elem: { val: string } }).elem.val),
  );
  const key = (ip: string) => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  return ips.sort((a, b) => key(a) - key(b));
}
