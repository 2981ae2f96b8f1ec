import { rmSync } from 'node:fs';
import type { EmbeddedDatabase } from '../../apps/controller/src/database/embedded-postgres';

export default async function globalTeardown(): Promise<void> {
  const db = (globalThis as { __latticeDb?: EmbeddedDatabase }).__latticeDb;
  if (!db) return;
  await db.stop();
  const dir = process.env.LATTICE_TEST_DATA_DIR;
  if (dir) rmSync(dir, { recursive: true, force: true });
}
