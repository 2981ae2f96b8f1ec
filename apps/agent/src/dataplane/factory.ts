import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Dataplane } from './dataplane.js';
import { LinuxDataplane } from './linux/linux-dataplane.js';
import { MemoryDataplane } from './memory.js';

export interface DataplaneOptions {
  netns: string | undefined;
  uplink: string;
  stateDir: string;
  instanceNetnsPrefix: string;
  /** Timeout of every command the linux data plane runs. */
  commandTimeoutMs?: number;
}

/** The data plane registry: one line per kind. */
export function createDataplane(kind: 'linux' | 'memory', o: DataplaneOptions): Dataplane {
  mkdirSync(o.stateDir, { recursive: true });
  switch (kind) {
    case 'memory':
      return new MemoryDataplane(join(o.stateDir, 'memory-dataplane.json'));
    case 'linux':
      return new LinuxDataplane({
        netns: o.netns,
        uplink: o.uplink,
        stateDir: o.stateDir,
        instanceNetnsPrefix: o.instanceNetnsPrefix,
        ...(o.commandTimeoutMs ? { commandLimits: { timeoutMs: o.commandTimeoutMs } } : {}),
      });
  }
}
