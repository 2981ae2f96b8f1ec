/**
 * The lab: a whole Lattice fleet on one Linux machine, built from network namespaces.
 *
 * ```
 *  <prefix>-ul (underlay switch)          <prefix>-h1 (host)              <prefix>-web1 (instance)
 *   br0 ── p1 ═══════════ veth ═══════════ eth0 192.0.2.11/24
 *    │                                      default via 192.0.2.254
 *    │                                      ltbr-…  ── ltv… ═════ veth ═════ eth0 (agent-made)
 *   brv100 ── p1v100 ════ veth ═══════════ eth0.100   (one wire per VLAN of the pool)
 *   …
 *   br0 ── pout ══════════ veth ═══════════ eth0 192.0.2.254/24      <prefix>-_out (outside)
 *                                           lo   203.0.113.10/32 ("the internet")
 * ```
 *
 * - The underlay switch namespace holds one bridge for the underlay and one per VLAN: this
 *   kernel has no 802.1Q, so each host gets a veth NAMED `eth0.<vid>` per VLAN of the
 *   controller's VLAN pool (DATAPLANE §2), which the agent enslaves as the VLAN uplink.
 * - Host namespaces `<prefix>-<host>` have `eth0` on the underlay (MTU 1500) and a default
 *   route via the outside; everything else in them (bridges, VXLAN devices, routes,
 *   `ip_forward`, nftables, BIRD) is the agent's, which manages the namespace from outside
 *   (`--netns`). The default route is the lab's, not the agent's: the agent only touches
 *   routes of its own protocol (76), so neither drift repair nor restart clean-up removes it.
 * - The outside `<prefix>-_out` stands for the world beyond the underlay's upstream router:
 *   the underlay's last usable address (192.0.2.254) on `eth0`, plugged into `br0`, and an
 *   "internet" address (`OUTSIDE_INTERNET_IP`, 203.0.113.10 from TEST-NET-3, RFC 5737) on
 *   `lo`, which no Lattice network of a lab test may use. It is an end system: no
 *   forwarding, and no route but the underlay's own, so it can only answer host underlay
 *   addresses and floating IPs (which live in the underlay) — traffic from an instance
 *   address reaching it would be a leak of the egress NAT, and gets no answer. The `_`
 *   keeps its name apart from every host and instance namespace (`<prefix>-<name>`: names
 *   are `^[a-z0-9][a-z0-9-]{0,62}$`, without `_`).
 * - Instance namespaces `<prefix>-<instance>` are created by the agents.
 * - Nothing is ever connected to the machine's own interfaces.
 *
 * All of it is recorded in `<dir>/lab.json` before it is made, so that `labDown` can remove
 * it after a crash. The prefix is exclusive to one lab: `labUp` refuses a prefix that
 * already names namespaces the lab did not record, which is what makes it safe for
 * `labDown` to remove every `<prefix>-*` namespace (instance namespaces are made by agents
 * and are known only by that prefix).
 */
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { packageRoot } from '../../libs/version/src/index.js';
import { intToIp, lastUsable, parseCidr } from '../../libs/model/src/ipv4.js';
import {
  ApiError,
  ControllerClient,
  type HostView,
  type InstanceView,
} from './controller-client.js';
import { instanceNetns as agentInstanceNetns } from '../../apps/agent/src/dataplane/linux/ports.js';
import { ipBatch, listLinks, listNetns, must, run, sleep } from './shell.js';

export const DEFAULTS = {
  dir: '.lab',
  prefix: 'lt',
  hosts: 3,
  underlay: '192.0.2.0/24',
  /** Most VLANs the lab pre-wires (one veth per host and VLAN). */
  maxVlans: 64,
  driftIntervalMs: 1000,
} as const;

/** Underlay MTU of every host's `eth0` and `eth0.<vid>`. */
export const UNDERLAY_MTU = 1500;
/** Host i (1-based) gets the underlay address base + HOST_IP_OFFSET + i (192.0.2.11, …). */
const HOST_IP_OFFSET = 10;
/**
 * The outside's "internet" address (on its `lo`): TEST-NET-3 (RFC 5737), outside the
 * underlay and outside every network the lab tests make.
 */
export const OUTSIDE_INTERNET_IP = '203.0.113.10';
/** The outside's namespace is `<prefix>` + this: `_` is in no host or instance name. */
const OUTSIDE_SUFFIX = '-_out';
/** The outside's port on the underlay switch (`p<i>` are the hosts'). */
const OUTSIDE_PORT = 'pout';
const STATE_FILE = 'lab.json';

export interface LabUpOptions {
  /** Lab directory: state, agent logs, pid files and agent state dirs. */
  readonly dir?: string;
  /** Namespace prefix, exclusive to this lab: `<prefix>-ul`, `<prefix>-h1`, `<prefix>-<instance>`. */
  readonly prefix?: string;
  readonly hosts?: number;
  /** Underlay CIDR; host i gets the address `.10+i`. */
  readonly underlay?: string;
  readonly controllerUrl: string;
  readonly adminToken: string;
  readonly maxVlans?: number;
  readonly driftIntervalMs?: number;
  /** Extra agent arguments (e.g. `--heartbeat-ms 1000`). */
  readonly agentArgs?: readonly string[];
  /** How long to wait for every agent to connect and apply; 0: do not wait. */
  readonly waitMs?: number;
  readonly log?: (line: string) => void;
}

export interface LabHost {
  readonly name: string;
  readonly index: number;
  readonly netns: string;
  readonly underlayIp: string;
  /** Agent state dir (applied state, BIRD and nftables files). */
  readonly stateDir: string;
  readonly logFile: string;
  readonly pidFile: string;
  token: string | null;
  pid: number | null;
}

export interface LabState {
  readonly version: 1;
  readonly dir: string;
  readonly prefix: string;
  readonly underlay: string;
  readonly underlayNs: string;
  /**
   * The outside: `outsideIp` (the underlay's last usable address, the hosts' default
   * gateway) on its `eth0` in `br0`, `internetIp` on its `lo`. Filled in by `labUp` for a
   * lab recorded before the outside existed.
   */
  outsideNs: string;
  outsideIp: string;
  internetIp: string;
  controllerUrl: string;
  /** VLAN ids pre-wired on every host (`eth0.<vid>`). */
  vlans: number[];
  /** Namespaces the lab itself made (underlay, outside, hosts); instance ones are `<prefix>-*`. */
  namespaces: string[];
  hosts: LabHost[];
}

export interface LabUpResult {
  readonly state: LabState;
  /** Milliseconds from the call to every agent connected and in sync. */
  readonly elapsedMs: number;
}

const PREFIX_RE = /^[a-z][a-z0-9]{0,7}$/;

export function statePath(dir: string): string {
  return join(resolve(dir), STATE_FILE);
}

export function readState(dir: string = DEFAULTS.dir): LabState | null {
  const p = statePath(dir);
  if (!existsSync(p)) return null;
  return JSON.parse(readFileSync(p, 'utf8')) as LabState;
}

function writeState(s: LabState): void {
  mkdirSync(s.dir, { recursive: true });
  const p = statePath(s.dir);
  writeFileSync(`${p}.tmp`, JSON.stringify(s, null, 2) + '\n');
  renameSync(`${p}.tmp`, p);
}

/** The namespace of an instance: the agent's own naming rule (it makes them). */
export function instanceNetns(s: Pick<LabState, 'prefix'>, instance: string): string {
  return agentInstanceNetns(s.prefix, { name: instance });
}

export function hostNetns(s: Pick<LabState, 'prefix'>, host: string): string {
  return `${s.prefix}-${host}`;
}

/** The outside's namespace (see the file comment). */
export function outsideNetns(s: Pick<LabState, 'prefix'>): string {
  return `${s.prefix}${OUTSIDE_SUFFIX}`;
}

/** The built agent (`npm run build`), found from this module in src/ or in dist/. */
export function agentMainPath(): string {
  const root = packageRoot();
  if (!root) throw new Error('cannot find the repository root (package.json)');
  return join(root, 'dist/apps/agent/src/main.js');
}

/** Parses `A-B` or `A`. */
function vlanRange(start: number, end: number): number[] {
  return Array.from({ length: end - start + 1 }, (_, i) => start + i);
}

/**
 * Builds the lab, or completes it (idempotent: what exists is kept, what is missing is
 * made, agents that run are left alone).
 */
export async function labUp(o: LabUpOptions): Promise<LabUpResult> {
  const t0 = Date.now();
  const log = o.log ?? (() => undefined);
  const dir = resolve(o.dir ?? DEFAULTS.dir);
  const prefix = o.prefix ?? DEFAULTS.prefix;
  const nHosts = o.hosts ?? DEFAULTS.hosts;
  const underlay = o.underlay ?? DEFAULTS.underlay;
  const maxVlans = o.maxVlans ?? DEFAULTS.maxVlans;
  if (!PREFIX_RE.test(prefix)) {
    throw new Error(`--prefix must be 1-8 lower-case letters/digits, starting with a letter`);
  }
  if (!Number.isInteger(nHosts) || nHosts < 1 || nHosts > 200) {
    throw new Error('--hosts must be an integer from 1 to 200');
  }
  const cidr = parseCidr(underlay);
  if (!cidr || cidr.addr !== cidr.base) throw new Error(`--underlay ${underlay} is not a CIDR`);
  // The last usable address is the outside's.
  const outsideIp = intToIp(lastUsable(cidr));
  if (cidr.base + HOST_IP_OFFSET + nHosts >= lastUsable(cidr)) {
    throw new Error(
      `--underlay ${underlay} is too small for ${nHosts} hosts (.11 upwards) and the outside (${outsideIp})`,
    );
  }
  const api = new ControllerClient(o.controllerUrl, o.adminToken);

  // 1. The controller's VLAN pool decides which VLAN wires exist.
  const pools = await api.pools();
  if (pools.vlan.size > maxVlans) {
    throw new Error(
      `the controller's VLAN pool is ${pools.vlan.start}-${pools.vlan.end} (${pools.vlan.size} ids); ` +
        `this kernel has no 802.1Q, so the lab pre-wires one veth per host and VLAN and takes ` +
        `at most ${maxVlans}. Restart the controller with a small pool, e.g. ` +
        `LATTICE_VLAN_POOL=100-109 npm start`,
    );
  }
  const wantVlans = vlanRange(pools.vlan.start, pools.vlan.end);

  // 2. The state: the existing one (re-run) or a new one. The prefix must be ours alone.
  let s = readState(dir);
  if (s && s.prefix !== prefix) {
    throw new Error(
      `${statePath(dir)} holds a lab with prefix "${s.prefix}", not "${prefix}": ` +
        `take it down first (npm run lab -- down) or use another --dir`,
    );
  }
  if (s && s.underlay !== underlay) {
    throw new Error(`the lab in ${dir} uses underlay ${s.underlay}; take it down to change it`);
  }
  const existing = await listNetns();
  const foreign = existing.filter(
    (n) => n.startsWith(`${prefix}-`) && !(s?.namespaces.includes(n) ?? false),
  );
  if (!s && foreign.length > 0) {
    throw new Error(
      `namespaces with prefix "${prefix}-" exist that this lab (${dir}) did not make: ` +
        `${foreign.slice(0, 5).join(', ')}${foreign.length > 5 ? ', …' : ''}. ` +
        `Use another --prefix, or remove them.`,
    );
  }
  s ??= {
    version: 1,
    dir,
    prefix,
    underlay,
    underlayNs: `${prefix}-ul`,
    outsideNs: outsideNetns({ prefix }),
    outsideIp,
    internetIp: OUTSIDE_INTERNET_IP,
    controllerUrl: api.url,
    vlans: [],
    namespaces: [],
    hosts: [],
  };
  // A lab recorded before the outside existed gets one.
  s.outsideNs ??= outsideNetns(s);
  s.outsideIp ??= outsideIp;
  s.internetIp ??= OUTSIDE_INTERNET_IP;
  s.controllerUrl = api.url;
  for (let i = 1; i <= nHosts; i++) {
    const name = `h${i}`;
    if (s.hosts.some((h) => h.name === name)) continue;
    s.hosts.push({
      name,
      index: i,
      netns: hostNetns(s, name),
      underlayIp: intToIp(cidr.base + HOST_IP_OFFSET + i),
      stateDir: join(dir, name),
      logFile: join(dir, `${name}.log`),
      pidFile: join(dir, `${name}.pid`),
      token: null,
      pid: null,
    });
  }
  const vlans = [...new Set([...s.vlans, ...wantVlans])].sort((a, b) => a - b);
  for (const ns of [s.underlayNs, s.outsideNs, ...s.hosts.map((h) => h.netns)]) {
    if (!s.namespaces.includes(ns)) s.namespaces.push(ns);
  }
  // Recorded before anything is made: a crash from here on leaves a state `down` can use.
  writeState(s);

  // 3. Hosts registered with the controller (the agent token is shown once: kept in
  // state). First, so that a host that cannot be registered stops us before the kernel changes.
  const registered = new Map((await api.hosts()).map((h) => [h.name, h]));
  for (const h of s.hosts) {
    const known = registered.get(h.name);
    if (known && h.token && known.underlayIp === h.underlayIp) continue;
    if (known) {
      // Registered, but this lab has no token for it (taken down before, or another lab):
      // a host without instances can be registered afresh.
      try {
        await api.request('DELETE', `/hosts/${encodeURIComponent(h.name)}`);
      } catch (e) {
        if (e instanceof ApiError && e.status === 409) {
          throw new Error(
            `host "${h.name}" is registered with the controller, but this lab has no agent ` +
              `token for it and it still has instances. Delete its instances (or the host), or ` +
              `take labs down with \`down --deregister\`.`,
          );
        }
        throw e;
      }
      log(`host ${h.name} re-registered (its agent token was unknown to this lab)`);
    }
    const created = await api.request<{ agentToken: string }>('POST', '/hosts', {
      name: h.name,
      underlayIp: h.underlayIp,
      uplink: 'eth0',
    });
    h.token = created.agentToken;
    h.pid = null; // an agent running with the old token is useless
    writeState(s);
  }

  // 4. Namespaces (IPv6 off: no DAD delays, no router solicitations on the underlay).
  const present = new Set(existing);
  const newNs = s.namespaces.filter((n) => !present.has(n));
  await ipBatch(null, [
    ...newNs.map((n) => `netns add ${n}`),
    ...newNs.map(
      (n) =>
        `netns exec ${n} sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1`,
    ),
    `netns exec ${s.outsideNs} sysctl -q -w net.ipv4.ip_forward=0`,
  ]);

  // 5. The underlay switch and the wires to every host.
  const ul = s.underlayNs;
  const ulLinks = await listLinks(ul);
  const ulLines = ['link set lo up'];
  const bridges = ['br0', ...vlans.map((v) => `brv${v}`)];
  for (const b of bridges) {
    if (!ulLinks.has(b)) ulLines.push(`link add ${b} type bridge`);
    ulLines.push(`link set ${b} mtu ${UNDERLAY_MTU} up`);
  }
  const hostLines = new Map<string, string[]>();
  for (const h of s.hosts) {
    const hLinks = await listLinks(h.netns);
    const lines = ['link set lo up'];
    const wire = (port: string, bridge: string, dev: string) => {
      if (!ulLinks.has(port)) {
        // A host end left without its switch end (crash) would block the veth creation.
        if (hLinks.has(dev)) lines.unshift(`link del ${dev}`);
        ulLines.push(
          `link add ${port} mtu ${UNDERLAY_MTU} type veth peer name ${dev} netns ${h.netns}`,
        );
      }
      ulLines.push(`link set ${port} master ${bridge} up`);
      lines.push(`link set ${dev} mtu ${UNDERLAY_MTU} up`);
    };
    wire(`p${h.index}`, 'br0', 'eth0');
    for (const v of vlans) wire(`p${h.index}v${v}`, `brv${v}`, `eth0.${v}`);
    lines.push(
      `addr replace ${h.underlayIp}/${cidr.prefix} dev eth0`,
      // The lab's, not the agent's (default protocol, not 76): see the file comment.
      `route replace default via ${s.outsideIp} dev eth0`,
    );
    hostLines.set(h.netns, lines);
  }
  // The outside: an end system on br0 (no forwarding, no route beyond the underlay).
  {
    const oLinks = await listLinks(s.outsideNs);
    const lines = ['link set lo up'];
    if (!ulLinks.has(OUTSIDE_PORT)) {
      if (oLinks.has('eth0')) lines.unshift('link del eth0');
      ulLines.push(
        `link add ${OUTSIDE_PORT} mtu ${UNDERLAY_MTU} type veth peer name eth0 netns ${s.outsideNs}`,
      );
    }
    ulLines.push(`link set ${OUTSIDE_PORT} master br0 up`);
    lines.push(
      `link set eth0 mtu ${UNDERLAY_MTU} up`,
      `addr replace ${s.outsideIp}/${cidr.prefix} dev eth0`,
      `addr replace ${s.internetIp}/32 dev lo`,
    );
    hostLines.set(s.outsideNs, lines);
  }
  // Stale host ends go first, then the switch side creates the pairs, then hosts configure.
  for (const [ns, lines] of hostLines) {
    const dels = lines.filter((l) => l.startsWith('link del '));
    await ipBatch(ns, dels);
  }
  await ipBatch(ul, ulLines);
  for (const [ns, lines] of hostLines) {
    await ipBatch(
      ns,
      lines.filter((l) => !l.startsWith('link del ')),
    );
  }
  s.vlans = vlans;
  writeState(s);
  log(
    `underlay ${underlay} in ${ul}; hosts ${s.hosts.map((h) => `${h.name}=${h.underlayIp}`).join(' ')}; ` +
      `VLAN wires eth0.${vlans[0]}…eth0.${vlans[vlans.length - 1]}; ` +
      `outside ${s.outsideNs}=${s.outsideIp} (internet ${s.internetIp}), the hosts' default gateway`,
  );

  // 6. One agent per host, in the background.
  const main = agentMainPath();
  if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first`);
  for (const h of s.hosts) {
    if (h.pid !== null && agentAlive(h)) continue;
    if (h.pid !== null) await killAgent(h);
    h.pid = startAgent(s, h, api.agentUrl, main, o);
    writeFileSync(h.pidFile, `${h.pid}\n`);
    writeState(s);
    log(`agent ${h.name}: pid ${h.pid}, log ${h.logFile}`);
  }

  // 7. Every agent connected and in sync.
  const waitMs = o.waitMs ?? 20_000;
  if (waitMs > 0) await waitForAgents(api, s, waitMs);
  return { state: s, elapsedMs: Date.now() - t0 };
}

function startAgent(
  s: LabState,
  h: LabHost,
  agentUrl: string,
  main: string,
  o: LabUpOptions,
): number {
  mkdirSync(h.stateDir, { recursive: true });
  const out = openSync(h.logFile, 'a');
  try {
    const child = spawn(
      process.execPath,
      [
        main,
        '--controller',
        agentUrl,
        '--host',
        h.name,
        '--dataplane',
        'linux',
        '--netns',
        h.netns,
        '--instance-netns-prefix',
        s.prefix,
        '--state-dir',
        h.stateDir,
        '--drift-interval-ms',
        String(o.driftIntervalMs ?? DEFAULTS.driftIntervalMs),
        ...(o.agentArgs ?? []),
      ],
      {
        detached: true,
        stdio: ['ignore', out, out],
        // The token travels in the environment, not on the command line (`ps` shows that).
        env: { ...process.env, LATTICE_AGENT_TOKEN: h.token ?? '' },
      },
    );
    child.unref();
    if (child.pid === undefined) throw new Error(`could not start the agent of ${h.name}`);
    return child.pid;
  } finally {
    closeSync(out);
  }
}

async function waitForAgents(api: ControllerClient, s: LabState, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  const names = new Set(s.hosts.map((h) => h.name));
  for (;;) {
    const hosts = (await api.hosts()).filter((h) => names.has(h.name));
    const lagging = hosts.filter((h) => !h.agent.connected || !h.inSync);
    if (lagging.length === 0 && hosts.length === names.size) return;
    const dead = s.hosts.filter((h) => !agentAlive(h));
    if (dead.length > 0) {
      const tail = dead.map((h) => `${h.logFile}:\n${tailOf(h.logFile)}`).join('\n');
      throw new Error(`agent(s) ${dead.map((h) => h.name).join(', ')} exited:\n${tail}`);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `agents not connected and in sync after ${ms} ms: ${lagging.map((h) => h.name).join(', ')} ` +
          `(see ${s.dir}/<host>.log)`,
      );
    }
    await sleep(100);
  }
}

function tailOf(file: string, lines = 10): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

// ---- processes --------------------------------------------------------------------------

function cmdline(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return null;
  }
}

/** True when `h.pid` is alive AND is this lab's agent for `h` (pids get reused). */
export function agentAlive(h: LabHost): boolean {
  if (h.pid === null) return false;
  const argv = cmdline(h.pid);
  if (!argv) return false;
  const at = (flag: string) => argv[argv.indexOf(flag) + 1];
  return argv.includes('--host') && at('--host') === h.name && at('--netns') === h.netns;
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (cmdline(pid) === null) return true;
    await sleep(25);
  }
  return cmdline(pid) === null;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

async function killAgent(h: LabHost): Promise<boolean> {
  if (h.pid === null || !agentAlive(h)) return false;
  signal(h.pid, 'SIGTERM');
  if (!(await waitGone(h.pid, 3000))) {
    signal(h.pid, 'SIGKILL');
    await waitGone(h.pid, 1000);
  }
  return true;
}

/** Stops (SIGTERM, then SIGKILL) one host's agent; the data plane stays. */
export async function stopAgent(s: LabState, host: string): Promise<void> {
  const h = s.hosts.find((x) => x.name === host);
  if (!h) throw new Error(`no host ${host} in the lab`);
  await killAgent(h);
}

// ---- down -------------------------------------------------------------------------------

export interface LabDownOptions {
  readonly dir?: string;
  /** Also delete the lab's hosts from the controller (those without instances). */
  readonly deregister?: { controllerUrl: string; adminToken: string };
  readonly log?: (line: string) => void;
}

export interface LabDownResult {
  readonly agents: number;
  readonly namespaces: string[];
  readonly processes: number;
}

/**
 * Removes everything the lab made: agents (recorded pids, verified by command line),
 * processes left inside its namespaces (BIRD, pings), its namespaces (recorded ones, and
 * every `<prefix>-*` one, which is ours — see the file comment), and its files. Tolerates
 * anything already gone; safe to run after a crash or twice.
 */
export async function labDown(o: LabDownOptions = {}): Promise<LabDownResult> {
  const log = o.log ?? (() => undefined);
  const dir = resolve(o.dir ?? DEFAULTS.dir);
  const s = readState(dir);
  if (!s) {
    log(`no lab in ${dir} (no ${STATE_FILE}): nothing to do`);
    return { agents: 0, namespaces: [], processes: 0 };
  }
  // Pids come from the state and from the pid files (written by up even if state was not).
  for (const h of s.hosts) {
    if (h.pid === null && existsSync(h.pidFile)) {
      const p = Number(readFileSync(h.pidFile, 'utf8').trim());
      if (Number.isSafeInteger(p) && p > 0) h.pid = p;
    }
  }
  const killed = await Promise.all(s.hosts.map((h) => killAgent(h)));
  const agents = killed.filter(Boolean).length;

  const ours = (await listNetns()).filter(
    (n) => s.namespaces.includes(n) || n.startsWith(`${s.prefix}-`),
  );
  let processes = 0;
  for (const ns of ours) {
    const r = await run(['ip', 'netns', 'pids', ns]);
    const pids = r.stdout
      .split('\n')
      .map((l) => Number(l.trim()))
      .filter((p) => Number.isSafeInteger(p) && p > 0 && p !== process.pid);
    for (const p of pids) signal(p, 'SIGTERM');
    for (const p of pids) if (!(await waitGone(p, 2000))) signal(p, 'SIGKILL');
    processes += pids.length;
  }
  // Instance namespaces first, then hosts and the outside, then the switch (veths go with
  // their namespace).
  const order = [
    ...ours.filter((n) => !s.namespaces.includes(n)),
    ...ours.filter((n) => s.namespaces.includes(n) && n !== s.underlayNs),
    ...ours.filter((n) => n === s.underlayNs),
  ];
  if (order.length > 0)
    await run(['ip', '-force', '-batch', '-'], order.map((n) => `netns del ${n}\n`).join(''));
  const left = (await listNetns()).filter((n) => order.includes(n));
  if (left.length > 0) throw new Error(`could not delete namespaces: ${left.join(', ')}`);

  if (o.deregister) {
    const api = new ControllerClient(o.deregister.controllerUrl, o.deregister.adminToken);
    for (const h of s.hosts) {
      try {
        await api.request('DELETE', `/hosts/${encodeURIComponent(h.name)}`);
        log(`host ${h.name} deregistered`);
      } catch (e) {
        log(`host ${h.name} stays registered: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }

  for (const h of s.hosts) {
    rmSync(h.stateDir, { recursive: true, force: true });
    rmSync(h.logFile, { force: true });
    rmSync(h.pidFile, { force: true });
  }
  rmSync(statePath(dir), { force: true });
  rmSync(`${statePath(dir)}.tmp`, { force: true });
  try {
    if (readdirSync(dir).length === 0) rmdirSync(dir);
  } catch {
    // not empty or gone: leave it
  }
  log(`removed ${agents} agent(s), ${processes} other process(es), ${order.length} namespace(s)`);
  return { agents, namespaces: order, processes };
}

// ---- status -----------------------------------------------------------------------------

export interface LabStatus {
  readonly state: LabState;
  readonly hosts: {
    readonly name: string;
    readonly netns: string;
    readonly underlayIp: string;
    readonly pid: number | null;
    readonly running: boolean;
    readonly controller: HostView | null;
  }[];
  readonly instances: (InstanceView & { netns: string; netnsExists: boolean })[];
  /** Set when the controller could not be asked. */
  readonly controllerError: string | null;
}

export async function labStatus(o: {
  dir?: string;
  controllerUrl?: string;
  adminToken?: string;
}): Promise<LabStatus> {
  const dir = resolve(o.dir ?? DEFAULTS.dir);
  const s = readState(dir);
  if (!s) throw new Error(`no lab in ${dir}: start one with \`npm run lab -- up\``);
  let hosts: HostView[] = [];
  let instances: InstanceView[] = [];
  let controllerError: string | null = null;
  if (!o.adminToken) controllerError = 'no admin token (set LATTICE_ADMIN_TOKEN)';
  else {
    const api = new ControllerClient(o.controllerUrl ?? s.controllerUrl, o.adminToken);
    try {
      [hosts, instances] = await Promise.all([api.hosts(), api.instances()]);
    } catch (e) {
      controllerError = e instanceof Error ? e.message : String(e);
    }
  }
  const names = new Set(s.hosts.map((h) => h.name));
  const namespaces = new Set(await listNetns());
  return {
    state: s,
    hosts: s.hosts.map((h) => ({
      name: h.name,
      netns: h.netns,
      underlayIp: h.underlayIp,
      pid: h.pid,
      running: agentAlive(h),
      controller: hosts.find((x) => x.name === h.name) ?? null,
    })),
    instances: instances
      .filter((i) => names.has(i.host))
      .map((i) => {
        const netns = instanceNetns(s, i.name);
        return { ...i, netns, netnsExists: namespaces.has(netns) };
      }),
    controllerError,
  };
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((v, c) => v.padEnd(widths[c]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function formatStatus(st: LabStatus): string {
  const s = st.state;
  const out = [
    `lab ${s.dir}: prefix ${s.prefix}, underlay ${s.underlay} (${s.underlayNs}), ` +
      `VLAN wires ${s.vlans.length ? `${s.vlans[0]}-${s.vlans[s.vlans.length - 1]}` : 'none'}, ` +
      (s.outsideNs
        ? `outside ${s.outsideIp} + ${s.internetIp} (${s.outsideNs}), `
        : 'no outside (run up again), ') +
      `controller ${s.controllerUrl}`,
    '',
    table([
      ['HOST', 'NETNS', 'UNDERLAY', 'AGENT', 'CONNECTED', 'APPLIED/DESIRED', 'IN SYNC', 'ERRORS'],
      ...st.hosts.map((h) => [
        h.name,
        h.netns,
        h.underlayIp,
        h.running ? `running (pid ${h.pid})` : 'stopped',
        h.controller ? (h.controller.agent.connected ? 'yes' : 'no') : '?',
        h.controller ? `${h.controller.appliedRevision}/${h.controller.desiredRevision}` : '?',
        h.controller ? (h.controller.inSync ? 'yes' : 'no') : '?',
        h.controller
          ? String(h.controller.agent.errors.length) +
            (h.controller.agent.errors[0] ? ` (${h.controller.agent.errors[0].message})` : '')
          : '?',
      ]),
    ]),
    '',
  ];
  if (st.instances.length === 0) out.push('no instances on the lab hosts');
  else {
    out.push(
      table([
        ['INSTANCE', 'NETWORK', 'HOST', 'IP', 'MAC', 'STATE', 'NETNS'],
        ...st.instances.map((i) => [
          i.name,
          i.network,
          i.host,
          i.ip,
          i.mac,
          i.state,
          `${i.netns}${i.netnsExists ? '' : ' (missing)'}`,
        ]),
      ]),
    );
  }
  if (st.controllerError) out.push('', `controller: ${st.controllerError}`);
  return out.join('\n');
}

// ---- exec -------------------------------------------------------------------------------

/** The argv that runs `command` inside an instance's namespace. */
export async function execArgv(
  s: LabState,
  instance: string,
  command: readonly string[],
): Promise<string[]> {
  const ns = instanceNetns(s, instance);
  if (!(await listNetns()).includes(ns)) {
    throw new Error(
      `no namespace ${ns}: is "${instance}" an instance on a lab host, and applied ` +
        `(\`npm run lab -- status\`)?`,
    );
  }
  return ['ip', 'netns', 'exec', ns, ...command];
}

/** `ip netns exec <ns> <argv>`, for tests; never throws on a non-zero exit. */
export function inNetns(ns: string, argv: readonly string[]) {
  return run(['ip', 'netns', 'exec', ns, ...argv]);
}

export { must, run };
