/**
 * The few REST calls the lab makes to a running controller (`/api/v1`, admin token).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

// The controller's own response shapes (type-only imports: nothing of NestJS is loaded).
export type { HostView } from '../../apps/controller/src/hosts/hosts.service.js';
export type { InstanceView } from '../../apps/controller/src/instances/instances.service.js';
export type { PoolUsage } from '../../apps/controller/src/pools/pools.service.js';
import type { HostView } from '../../apps/controller/src/hosts/hosts.service.js';
import type { InstanceView } from '../../apps/controller/src/instances/instances.service.js';
import type { PoolUsage } from '../../apps/controller/src/pools/pools.service.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    what: string,
  ) {
    const msg =
      typeof body === 'object' && body !== null && 'message' in body
        ? String(body.message)
        : JSON.stringify(body);
    super(`${what}: HTTP ${status}: ${msg}`);
  }
}

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

export class ControllerClient {
  constructor(
    readonly url: string,
    private readonly token: string,
  ) {}

  /** The agents' WebSocket endpoint on the same controller. */
  get agentUrl(): string {
    return `${this.url.replace(/^http/, 'ws')}/agent`;
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.url}/api/v1${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(60_000),
      });
    } catch (e) {
      const cause = e instanceof Error && e.cause instanceof Error ? ` (${e.cause.message})` : '';
      throw new Error(
        `cannot reach the controller at ${this.url}${cause}: is it running (\`npm start\`)? ` +
          `Set LATTICE_URL to point elsewhere.`,
      );
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // keep the text
    }
    if (!res.ok) throw new ApiError(res.status, parsed, `${method} /api/v1${path}`);
    return parsed as T;
  }

  /** Every page of a list endpoint. */
  async list<T>(path: string): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | null = null;
    do {
      const sep = path.includes('?') ? '&' : '?';
      const q: string = `${path}${sep}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const page: { items: T[]; nextCursor: string | null } = await this.request('GET', q);
      out.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    return out;
  }

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
