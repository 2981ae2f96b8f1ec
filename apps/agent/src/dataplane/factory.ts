import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Dataplane } from './dataplane.js';
import { MemoryDataplane } from './memory.js';

export interface DataplaneOptions {
  netns: string | undefined;
  uplink: string;
  stateDir: string;
  instanceNetnsPrefix: string;
}

/** The data plane registry: one line per kind. */
export async function createDataplane(
  kind: 'linux' | 'memory',
  o: DataplaneOptions,
): Promise<Dataplane> {
  mkdirSync(o.stateDir, { recursive: true });
  switch (kind) {
    case 'memory':
      return Promise.resolve(new MemoryDataplane(join(o.stateDir, 'memory-dataplane.json')));
    case 'linux':
      throw new Error(`the linux data plane is not available in this build (${o.uplink})`);
  }
}
