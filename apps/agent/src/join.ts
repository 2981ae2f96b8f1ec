/**
 * Joining: an agent started with a join token (and no agent token) registers its own host
 * with `POST /api/v1/join` on the controller it was pointed at, and keeps the agent token it
 * receives in its state directory (`agent-token`, mode 0600), which it uses from then on:
 * restarted, it is the same host.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { createRunner, type CommandRunner } from './dataplane/linux/commands.js';

export const AGENT_TOKEN_FILE = 'agent-token';

/** The agent token a join stored in `stateDir`, if any. */
export function storedAgentToken(stateDir: string): string | undefined {
  const file = join(stateDir, AGENT_TOKEN_FILE);
  if (!existsSync(file)) return undefined;
  return readFileSync(file, 'utf8').trim() || undefined;
}

/** Writes the token atomically (temporary file, rename), readable by its owner only. */
export function storeAgentToken(stateDir: string, token: string): string {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const file = join(stateDir, AGENT_TOKEN_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, token + '\n', { mode: 0o600 });
  renameSync(tmp, file);
  return file;
}

/** The first global IPv4 address of `uplink` (in `netns` when given), from `ip -j addr`. */
export async function discoverUnderlayIp(
  uplink: string,
  netns?: string,
  run: CommandRunner = createRunner({ timeoutMs: 10_000, maxOutputBytes: 1 << 20 }),
): Promise<string> {
  const argv = ['ip', ...(netns ? ['-n', netns] : []), '-j', '-4', 'addr', 'show', 'dev', uplink];
  const r = await run(argv);
  if (r.code !== 0)
    throw new JoinRefused(
      `cannot find the underlay address of ${uplink}${netns ? ` in ${netns}` : ''}: ${r.stderr.trim() || `exit ${r.code}`}; give --underlay-ip`,
    );
  const links = JSON.parse(r.stdout || '[]') as {
    addr_info?: { family?: string; local?: string; scope?: string }[];
  }[];
  for (const l of links)
    for (const a of l.addr_info ?? [])
      if (a.family === 'inet' && a.scope === 'global' && a.local) return a.local;
  throw new JoinRefused(`${uplink} has no global IPv4 address: give --underlay-ip`);
}

/** The controller refused the join (4xx): retrying cannot help. */
export class JoinRefused extends Error {}

export interface JoinOptions {
  /** The agent's ws[s]:// URL: the API is on the same server. */
  readonly controller: string;
  readonly ca?: string;
  readonly joinToken: string;
  readonly host: string;
  readonly underlayIp: string;
  readonly uplink: string;
  readonly labels?: Record<string, string>;
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
  readonly log: (line: string) => void;
}

export interface Joined {
  readonly agentToken: string;
  readonly hostId: string;
  readonly rejoined: boolean;
}

/** The join endpoint beside the agent endpoint: ws://h:p/agent → http://h:p/api/v1/join. */
export function joinUrl(controller: string): URL {
  const u = new URL(controller);
  u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
  u.pathname = '/api/v1/join';
  u.search = '';
  return u;
}

function post(
  url: URL,
  token: string,
  body: unknown,
  ca?: string,
): Promise<{ status: number; body: unknown }> {
  const payload = JSON.stringify(body);
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
        },
        timeout: 30_000,
        ...(ca ? { ca } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', reject);
    req.end(payload);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Joins, retrying while the controller is unreachable or answers 5xx (backoff from
 * `backoffMinMs`, doubling up to `backoffMaxMs`); a 4xx is final (`JoinRefused`, with the
 * controller's message).
 */
export async function joinController(o: JoinOptions): Promise<Joined> {
  const url = joinUrl(o.controller);
  let delay = o.backoffMinMs;
  for (;;) {
    let why: string;
    try {
      const r = await post(
        url,
        o.joinToken,
        {
          name: o.host,
          underlayIp: o.underlayIp,
          uplink: o.uplink,
          ...(o.labels && Object.keys(o.labels).length > 0 ? { labels: o.labels } : {}),
        },
        o.ca,
      );
      const b = (typeof r.body === 'object' && r.body !== null ? r.body : {}) as {
        agentToken?: string;
        id?: string;
        rejoined?: boolean;
        message?: unknown;
        details?: unknown;
      };
      if (r.status === 201 && typeof b.agentToken === 'string' && typeof b.id === 'string')
        return { agentToken: b.agentToken, hostId: b.id, rejoined: b.rejoined === true };
      const message = typeof b.message === 'string' ? b.message : JSON.stringify(r.body);
      const details = Array.isArray(b.details)
        ? ` (${(b.details as { field: string; errors: string[] }[]).map((d) => `${d.field}: ${d.errors.join(', ')}`).join('; ')})`
        : '';
      if (r.status >= 400 && r.status < 500)
        throw new JoinRefused(
          `the controller refused the join: HTTP ${r.status}: ${message}${details}`,
        );
      why = `HTTP ${r.status}: ${message}`;
    } catch (e) {
      if (e instanceof JoinRefused) throw e;
      why = e instanceof Error ? e.message : String(e);
    }
    o.log(`join: ${url.origin} not ready (${why}); retrying in ${delay} ms`);
    await sleep(delay);
    delay = Math.min(delay * 2, o.backoffMaxMs);
  }
}
