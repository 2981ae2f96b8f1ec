import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  childrenOf,
  freePort,
  isAlive as isRunning,
  startEmbeddedPostgres,
  type EmbeddedDatabase,
} from '../../apps/controller/src/database/embedded-postgres.js';

/** How PostgreSQL goes away. */
export type PostgresFault =
  /** SIGKILL of the postmaster alone: its backends notice and exit on their own. */
  | 'kill9-postmaster'
  /** SIGKILL of the postmaster and every backend at once (a machine or container dying). */
  | 'kill9-all'
  /** A fast shutdown (SIGINT: sessions terminated with 57P01), as a restart by an operator. */
  | 'fast-restart'
  /**
   * SIGKILL of one client backend (the OOM killer's favourite): the postmaster stays and
   * resets every other session (57P02) and recovers by itself; no restart from outside.
   */
  | 'kill9-backend';

/** The process title of a client backend: `postgres: <user> <db> <address>(<port>) <what>`. */
const CLIENT_BACKEND = /^postgres: \S+ \S+ 127\.0\.0\.1\(\d+\) /;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A PostgreSQL server of the fault test's own (never the run's shared one): the
 * `embedded-postgres` cluster in a directory of its own, on a fixed port, which can be
 * killed and started again on that port under a running controller.
 */
export class PrivatePostgres {
  private db: EmbeddedDatabase | undefined;

  private constructor(
    readonly dataDir: string,
    readonly port: number,
    db: EmbeddedDatabase,
  ) {
    this.db = db;
  }

  static async start(dataDir: string): Promise<PrivatePostgres> {
    const port = await freePort();
    const db = await startEmbeddedPostgres({ dataDir, port, database: 'postgres' });
    return new PrivatePostgres(dataDir, port, db);
  }

  /** The server's URL for `database`. */
  url(database = 'postgres'): string {
    const u = new URL(this.db!.url);
    u.pathname = `/${database}`;
    return u.toString();
  }

  get running(): boolean {
    return this.db !== undefined;
  }

  /** The postmaster's pid, from `<cluster>/postmaster.pid`. */
  postmasterPid(): number {
    const file = join(this.dataDir, 'pg', 'postmaster.pid');
    return Number(readFileSync(file, 'utf8').split('\n')[0]);
  }

  /**
   * Takes the server away; resolves once none of its processes is left (`kill9-backend`:
   * once the killed backend is gone; the server then recovers by itself).
   */
  async fail(
    how: PostgresFault,
    o: { pick?: <T>(xs: T[]) => T; backend?: number } = {},
  ): Promise<void> {
    const pid = this.postmasterPid();
    const children = childrenOf(pid);
    if (how === 'kill9-backend') {
      const titles = children.map((c) => {
        try {
          return { c, title: readFileSync(`/proc/${c}/cmdline`, 'utf8') };
        } catch {
          return { c, title: '' };
        }
      });
      const clients = titles.filter((t) => CLIENT_BACKEND.test(t.title)).map((t) => t.c);
      if (clients.length === 0) throw new Error('no client backend to kill');
      // the backend asked for (a committer, say) if it is still there, else any
      const victim =
        o.backend !== undefined && clients.includes(o.backend)
          ? o.backend
          : (o.pick ?? ((xs) => xs[0]))(clients);
      process.kill(victim, 'SIGKILL');
      while (isRunning(victim)) await sleep(10);
      return;
    }
    const db = this.db!;
    this.db = undefined;
    if (how === 'fast-restart') {
      // embedded-postgres stops with SIGINT (a fast shutdown) and waits for the exit
      await db.stop();
    } else {
      process.kill(pid, 'SIGKILL');
      if (how === 'kill9-all') for (const c of children) process.kill(c, 'SIGKILL');
    }
    // Backends of a killed postmaster exit when they notice; give them a few seconds.
    const deadline = Date.now() + 5000;
    const left = () => [pid, ...children].filter(isRunning);
    while (left().length > 0) {
      if (Date.now() > deadline) for (const p of left()) process.kill(p, 'SIGKILL');
      await sleep(20);
    }
  }

  /** Starts the server again on the same port (crash recovery included). */
  async restart(): Promise<void> {
    if (this.db) return;
    let last: unknown;
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        this.db = await startEmbeddedPostgres({
          dataDir: this.dataDir,
          port: this.port,
          database: 'postgres',
        });
        return;
      } catch (e) {
        // e.g. the shared memory of the killed server still attached for a moment
        last = e;
        await sleep(250);
      }
    }
    throw last instanceof Error ? last : new Error(String(last));
  }

  /** Stops a running server (a killed one has no process left: `fail` waited for that). */
  async stop(): Promise<void> {
    const db = this.db;
    this.db = undefined;
    await db?.stop();
  }
}
