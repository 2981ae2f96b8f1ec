import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startEmbeddedPostgres,
  type EmbeddedDatabase,
} from '../../apps/controller/src/database/embedded-postgres';

/**
 * Starts one embedded PostgreSQL for the whole run (unless TEST_DATABASE_URL names a
 * server). Each test file then creates a database of its own on it (see db.ts), so files
 * run in parallel without sharing state. Workers inherit the URL through process.env.
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.TEST_DATABASE_URL) return;
  const dataDir = mkdtempSync(join(tmpdir(), 'lattice-test-'));
  const db: EmbeddedDatabase = await startEmbeddedPostgres({ dataDir, database: 'postgres' });
  process.env.TEST_DATABASE_URL = db.url;
  process.env.LATTICE_TEST_DATA_DIR = dataDir;
  (globalThis as { __latticeDb?: EmbeddedDatabase }).__latticeDb = db;
}
