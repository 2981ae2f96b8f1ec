/** The REST API, with the bearer token the operator signed in with. */

export interface AgentStatus {
  connected: boolean;
  lastSeen: string | null;
  version: string | null;
  errors: { key: string; message: string }[];
  drift: { key: string; message: string; repaired: boolean }[];
}
export interface Host {
  id: string;
  name: string;
  underlayIp: string;
  agent: AgentStatus;
  desiredRevision: number;
  appliedRevision: number;
  inSync: boolean;
  /** instances placed on the host (counted by the server) */
  instanceCount: number;
}
export interface Network {
  id: string;
  name: string;
  model: string;
  cidr: string;
  gateway: string;
  vlanId: number | null;
  vni: number | null;
  encapsulation: string | null;
  routing: string | null;
  transport: string | null;
  /** instances on the network and the distinct hosts they are on (counted by the server) */
  instanceCount: number;
  hostCount: number;
}
export interface Instance {
  id: string;
  name: string;
  network: string;
  host: string;
  ip: string;
  mac: string;
  state: string;
}
export interface Router {
  id: string;
  name: string;
  networks: string[];
}
export interface PoolUsage {
  start: number;
  end: number;
  size: number;
  used: number;
  free: number;
  usedOutsideRange: number;
}
export interface Pools {
  vlan: PoolUsage;
  vni: PoolUsage;
}
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}
export interface TraceHop {
  step: string;
  host?: string;
  detail: string;
  resources?: string[];
}
export interface Trace {
  from: string;
  to: string;
  proto: string;
  verdict: 'delivered' | 'dropped' | 'egress';
  reason?: string;
  hops: TraceHop[];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const MAX_PAGE = 1000;

export class Api {
  constructor(readonly token: string) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        accept: 'application/json',
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    let json: unknown = undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON
    }
    if (!res.ok) {
      const m = (json as { message?: unknown } | undefined)?.message;
      throw new ApiError(res.status, typeof m === 'string' ? m : `${res.status} ${res.statusText}`);
    }
    return json as T;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  page<T>(path: string, limit: number, cursor?: string | null, extra: Record<string, string> = {}) {
    const q = new URLSearchParams({ limit: String(limit), ...extra });
    if (cursor) q.set('cursor', cursor);
    return this.get<Page<T>>(`${path}?${q.toString()}`);
  }

  /** Every item of a list, page by page (hosts, networks, routers: bounded lists). */
  async all<T>(path: string, extra: Record<string, string> = {}): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | null = null;
    do {
      const p: Page<T> = await this.page<T>(path, MAX_PAGE, cursor, extra);
      out.push(...p.items);
      cursor = p.nextCursor;
    } while (cursor);
    return out;
  }

  /**
   * The token's role. There is no "who am I" call: a mutating call with an empty body is
   * refused before anything is written — 403 for the viewer token, 400 (invalid input)
   * for the admin token.
   */
  async role(): Promise<'admin' | 'viewer'> {
    await this.get('/pools');
    try {
      await this.request('POST', '/instances', {});
    } catch (e) {
      if (e instanceof ApiError && e.status === 403) return 'viewer';
      if (e instanceof ApiError && e.status === 400) return 'admin';
      throw e;
    }
    return 'admin';
  }
}
