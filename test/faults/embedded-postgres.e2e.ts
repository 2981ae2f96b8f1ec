import { afterAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import {
  freePort,
  isAlive,
  isPostmasterOf,
  lockFile,
  readLock,
  startEmbeddedPostgres,
  stopForeignPostmaster,
  type EmbeddedDatabase,
  type RestartEvent,
} from '../../apps/controller/src/database/embedded-postgres.js';
import { EmbeddedController } from './embedded-controller.js';

/**
 * The embedded PostgreSQL under real processes, no mocks: the built controller in a child
 * process started from a working directory of its own (not the checkout), killed with
 * SIGKILL and started again over the orphaned server, then its server killed under it;
 * lock files left by dead or unrelated processes; the supervision seen from its API. As
 * root the server runs as `postgres`, so the temporary folder is made traversable (0711).
 */
const work = mkdtempSync(join(tmpdir(), 'lattice-embedded-'));
chmodSync(work, 0o711);
const clusterOf = (dataDir: string) => join(dataDir, 'pg');
const controllers: EmbeddedController[] = [];
const servers: EmbeddedDatabase[] = [];
const others: { kill(): boolean }[] = [];
const dataDirs: string[] = [];

afterAll(async () => {
  for (const c of controllers) await c.stop(5000).catch(() => undefined);
  for (const s of servers) await s.stop().catch(() => undefined);
  for (const o of others) o.kill();
  // A test that failed halfway may leave a server behind: ours only, verified by its pid.
  for (const dir of dataDirs) {
    const pid = readLock(clusterOf(dir))?.pid;
    if (pid && isPostmasterOf(pid, clusterOf(dir)))
      await stopForeignPostmaster(pid, clusterOf(dir), () => undefined, {
        fastMs: 3000,
        immediateMs: 2000,
        killMs: 2000,
      }).catch(() => undefined);
  }
  rmSync(work, { recursive: true, force: true });
});

function newDataDir(name: string): string {
  const dir = join(work, name);
  dataDirs.push(dir);
  return dir;
}

function startController(dataDir: string, port: number): EmbeddedController {
  const cwd = join(work, 'cwd');
  mkdirSync(cwd, { recursive: true });
  const c = new EmbeddedController({ cwd, dataDir, port });
  controllers.push(c);
  return c;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function query(url: string, text: string): Promise<unknown[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text)).rows;
  } finally {
    await c.end();
  }
}

describe('the controller supervises its embedded PostgreSQL', () => {
  it('takes over the server orphaned by kill -9, and restarts a server that dies', async () => {
    const dataDir = newDataDir('controller');
    const cluster = clusterOf(dataDir);
    const port = await freePort();

    const first = startController(dataDir, port);
    await first.waitHealthy();
    const keep = await first.call('POST', '/hosts', { name: 'keep', underlayIp: '192.0.2.10' });
    expect(keep.status).toBe(201);

    // kill -9 of the controller leaves its server running: an orphan holding the lock
    const orphan = readLock(cluster)!.pid;
    await first.kill9();
    expect(isPostmasterOf(orphan, cluster)).toBe(true);

    const second = startController(dataDir, port);
    await second.waitHealthy();
    expect(isAlive(orphan)).toBe(false);
    expect(second.output.join('\n')).toContain(`left running by a previous run (pid ${orphan}`);
    const found = await second.call('GET', '/hosts/keep');
    expect(found.status).toBe(200);
    expect(found.body.id).toBe(keep.body.id);

    // A live controller's server is not an orphan: a second start on its data directory
    // refuses, and leaves it alone.
    const lock = readLock(cluster)!;
    await expect(
      startEmbeddedPostgres({ dataDir, port: await freePort(), supervise: false }),
    ).rejects.toThrow(`is run by another live process (pid ${second.pid})`);
    expect(isPostmasterOf(lock.pid, cluster)).toBe(true);

    // The server dies under the running controller: 503s (never 500) until it is back on
    // the same port, which takes a few seconds at most.
    process.kill(lock.pid, 'SIGKILL');
    const killedAt = Date.now();
    const statuses: number[] = [];
    let recoveredMs = -1;
    for (let i = 1; Date.now() - killedAt < 20_000; i++) {
      const read = await second.call('GET', '/hosts');
      statuses.push(read.status);
      const write = await second.call('POST', '/hosts', {
        name: `during-${i}`,
        underlayIp: `198.18.${Math.floor(i / 250)}.${(i % 250) + 1}`,
      });
      statuses.push(write.status);
      // (a backend not yet gone may answer the very first request)
      if (write.status === 201 && statuses.includes(503)) {
        recoveredMs = Date.now() - killedAt;
        break;
      }
      await sleep(25);
    }
    expect(new Set(statuses.filter((s) => s !== 200 && s !== 201 && s !== 503))).toEqual(new Set());
    expect(statuses).toContain(503);
    expect(recoveredMs).toBeGreaterThanOrEqual(0);
    expect(recoveredMs).toBeLessThan(10_000);
    const after = readLock(cluster)!;
    expect(after.pid).not.toBe(lock.pid);
    expect(after.port).toBe(lock.port);
    expect(isPostmasterOf(after.pid, cluster)).toBe(true);
    const log = second.output.join('\n');
    expect(log).toContain(`(pid ${lock.pid}) exited unexpectedly (killed by SIGKILL)`);
    expect(log).toContain(`restarted on port ${lock.port} (pid ${after.pid}`);
    const names = (await second.call('GET', '/hosts')).body.items.map(
      (h: { name: string }) => h.name,
    );
    expect(names).toContain('keep');
    expect(names.filter((n: string) => n.startsWith('during-')).length).toBeGreaterThan(0);

    // A clean shutdown stops the server, and nothing starts it again.
    await second.stop();
    expect(second.exit).toEqual({ code: 0, signal: null });
    expect(isAlive(after.pid)).toBe(false);
    expect(existsSync(lockFile(cluster))).toBe(false);
    const shutdown = second.output.findIndex((l) => l.includes('shutting down'));
    expect(second.output.slice(shutdown).join('\n')).not.toMatch(/exited|restart/);
  });
});

describe('a lock file left behind', () => {
  it('does not block a start, and no process but our own server is ever signalled', async () => {
    const dataDir = newDataDir('locks');
    const cluster = clusterOf(dataDir);
    const reports: string[] = [];
    const start = (port?: number) =>
      startEmbeddedPostgres({
        dataDir,
        port,
        database: 'postgres',
        report: (_level, m) => reports.push(m),
      });
    let db = await start();
    servers.push(db);
    const port = db.port;
    const template = readFileSync(lockFile(cluster), 'utf8');
    const withPid = (pid: number) => template.replace(/^\d+/, String(pid));
    const up = async (d: EmbeddedDatabase) =>
      expect(await query(d.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);

    // our own live server, started in this process: not an orphan either
    await expect(start()).rejects.toThrow('already runs in this process');
    await up(db);
    await db.stop();
    expect(existsSync(lockFile(cluster))).toBe(false);

    // the pid of a process that has exited (a server killed before it could clean up)
    const done = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => done.once('exit', r));
    writeFileSync(lockFile(cluster), withPid(done.pid!));
    db = await start(port);
    servers.push(db);
    await up(db);
    await db.stop();

    // the pid reused by an unrelated live process: never signalled, the lock replaced
    const sleeper = spawn('sleep', ['60']);
    others.push(sleeper);
    writeFileSync(lockFile(cluster), withPid(sleeper.pid!));
    db = await start(port);
    servers.push(db);
    await up(db);
    expect(sleeper.exitCode).toBeNull();
    expect(sleeper.signalCode).toBeNull();
    expect(reports.join('\n')).toContain(`names pid ${sleeper.pid}, a live process`);
    await db.stop();

    // the pid of a live PostgreSQL of another cluster: left alone as well
    const other = await startEmbeddedPostgres({
      dataDir: newDataDir('other'),
      database: 'postgres',
    });
    servers.push(other);
    writeFileSync(lockFile(cluster), withPid(other.pid!));
    db = await start(port);
    servers.push(db);
    await up(db);
    await up(other);
    expect(isPostmasterOf(other.pid!, clusterOf(join(work, 'other')))).toBe(true);
    await db.stop();
    await other.stop();
  });
});

describe('supervision in process', () => {
  it('restarts a killed server on its port, tells onRestart, and stop() is final', async () => {
    const dataDir = newDataDir('supervised');
    const reports: string[] = [];
    const db = await startEmbeddedPostgres({
      dataDir,
      database: 'postgres',
      supervise: true,
      report: (level, m) => reports.push(`${level}: ${m}`),
    });
    servers.push(db);
    const first = db.pid!;
    const restarted = new Promise<RestartEvent>((r) => db.onRestart(r));
    process.kill(first, 'SIGKILL');
    const e = await restarted;
    expect(e.pid).not.toBe(first);
    expect(e.pid).toBe(db.pid);
    expect(e.downMs).toBeLessThan(10_000);
    expect(readLock(clusterOf(dataDir))).toMatchObject({ pid: e.pid, port: db.port });
    expect(await query(db.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    expect(reports.join('\n')).toMatch(
      /error: .*\(pid \d+\) exited unexpectedly \(killed by SIGKILL\)/,
    );

    await db.stop();
    expect(db.pid).toBeUndefined();
    expect(isAlive(e.pid)).toBe(false);
    await sleep(1000);
    expect(readLock(clusterOf(dataDir))).toBeUndefined();
    expect(reports.filter((r) => r.includes('exited'))).toHaveLength(1);
  });
});
