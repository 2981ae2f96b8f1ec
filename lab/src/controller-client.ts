/**
 * The few REST calls the lab makes to a running controller (`/api/v1`, admin token).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ControllerClient as BaseClient } from '../../apps/ctl/src/client.js';

export { ApiError } from '../../apps/ctl/src/client.js';

// The controller's own response shapes (type-only imports: nothing of NestJS is loaded).
export type { HostView } from '../../apps/controller/src/hosts/hosts.service.js';
export type { InstanceView } from '../../apps/controller/src/instances/instances.service.js';
export type { PoolUsage } from '../../apps/controller/src/pools/pools.service.js';
import type { HostView } from '../../apps/controller/src/hosts/hosts.service.js';
import type { InstanceView } from '../../apps/controller/src/instances/instances.service.js';
import type { PoolUsage } from '../../apps/controller/src/pools/pools.service.js';

/** Where the lab finds the controller: `LATTICE_URL` and `LATTICE_ADMIN_TOKEN`, or defaults. */
export function controllerFromEnv(env: NodeJS.ProcessEnv = process.env): {
  url: string;
  token: string | undefined;
  tokenSource: string;
} {
  const url = (env.LATTICE_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  if (env.LATTICE_ADMIN_TOKEN) {
    return { url, token: env.LATTICE_ADMIN_TOKEN, tokenSource: 'LATTICE_ADMIN_TOKEN' };
  }
  const file = join(env.LATTICE_DATA_DIR ?? '.lattice', 'admin-token');
  const token = existsSync(file) ? readFileSync(file, 'utf8').trim() || undefined : undefined;
  return { url, token, tokenSource: file };
}

/** The shared client (apps/ctl/src/client.ts), with the calls the lab makes. */
export class ControllerClient extends BaseClient {
  hosts(): Promise<HostView[]> {
    return this.list<HostView>('/hosts');
  }

  instances(): Promise<InstanceView[]> {
    return this.list<InstanceView>('/instances');
  }

  pools(): Promise<{ vlan: PoolUsage; vni: PoolUsage }> {
    return this.request('GET', '/pools');
  }
}
