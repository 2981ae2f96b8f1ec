import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from '../../apps/controller/src/database/embedded-postgres.js';
import { spawnAgent, type AgentProcess } from '../support/agents.js';
import { spawnController, type ControllerProcess } from './fault-controller.js';
import { Api } from './fault-workload.js';

/** Agents retry fast and notice a silent controller within two seconds. */
export const AGENT_ARGS = [
  '--fast-retry-max-ms',
  '300',
  '--backoff-min-ms',
  '100',
  '--backoff-max-ms',
  '1000',
  '--controller-timeout-ms',
  '2000',
];

/** The controller drops a silent agent after 1.5 s. */
export const CONTROLLER_ENV = {
  LATTICE_AGENT_TIMEOUT_MS: '1500',
  LATTICE_HELLO_TIMEOUT_MS: '2000',
};

/**
 * A controller process on a fixed port (so that it can be restarted where its agents
 * look for it) and real agent processes on the memory data plane, one per host.
 */
export class Cluster {
  controller!: ControllerProcess;
  readonly api: Api;
  readonly hosts = new Map<string, { id: string; token: string }>();
  readonly agents = new Map<string, AgentProcess>();
  /** Controller URL per agent (a proxy's, for some). */
  private readonly agentUrl = new Map<string, string>();
  /** Every controller process started, for the logs. */
  readonly controllers: ControllerProcess[] = [];

  private constructor(
    readonly dir: string,
    readonly databaseUrl: string,
    readonly port: number,
  ) {
    this.api = new Api(`http://127.0.0.1:${port}`);
  }

  /** A cluster with its controller started; `track` gets it first, for the cleanup. */
  static async start(
    dir: string,
    databaseUrl: string,
    track: (c: Cluster) => void,
  ): Promise<Cluster> {
    mkdirSync(dir, { recursive: true });
    const c = new Cluster(dir, databaseUrl, await freePort());
    track(c);
    await c.startController();
    return c;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts the controller (again); resolves with the milliseconds until it was healthy. */
  async startController(): Promise<number> {
    const t0 = Date.now();
    this.controller = spawnController({
      databaseUrl: this.databaseUrl,
      port: this.port,
      dataDir: join(this.dir, 'controller'),
      env: CONTROLLER_ENV,
    });
    this.controllers.push(this.controller);
    try {
      await this.controller.waitHealthy();
    } catch (e) {
      await this.controller.kill9();
      throw e;
    }
    return Date.now() - t0;
  }

  async addHost(name: string, underlayIp: string): Promise<void> {
    const h = await this.api.ok('POST', '/hosts', { name, underlayIp });
    this.hosts.set(name, { id: h.id, token: h.agentToken });
  }

  /** Starts (or restarts, with the same state directory) the agent of `host`. */
  startAgent(host: string, url?: string): AgentProcess {
    if (url) this.agentUrl.set(host, url);
    const a = spawnAgent({
      url: this.agentUrl.get(host) ?? this.url,
      host,
      token: this.hosts.get(host)!.token,
      stateDir: join(this.dir, 'agents', host),
      args: AGENT_ARGS,
    });
    this.agents.set(host, a);
    return a;
  }

  /** Stops every process of the cluster (SIGKILL for whatever does not stop in time). */
  async stop(): Promise<void> {
    await Promise.all(
      [...this.agents.values()].map(async (a) => {
        const t = setTimeout(() => a.proc.kill('SIGKILL'), 5000);
        await a.stop();
        clearTimeout(t);
      }),
    );
    await this.controller?.stop();
  }
}

/** The `applied revision N (diff|snapshot, K errors)` lines an agent printed after line `since`. */
export function appliedLines(
  a: AgentProcess,
  since = 0,
): { revision: number; via: 'diff' | 'snapshot'; errors: number }[] {
  return a.output.slice(since).flatMap((l) => {
    const m = /applied revision (\d+) \((diff|snapshot), (\d+) errors/.exec(l);
    return m
      ? [{ revision: Number(m[1]), via: m[2] as 'diff' | 'snapshot', errors: Number(m[3]) }]
      : [];
  });
}

/**
 * Frames an agent applied with errors: the memory data plane is strict (a create of a key
 * it holds, an update or delete of one it lacks), so a diff that does not fit what the
 * agent holds — from a state it was never sent, say — shows here.
 */
export function agentErrors(c: Cluster): string[] {
  return [...c.agents].flatMap(([h, a]) =>
    appliedLines(a)
      .filter((l) => l.errors > 0)
      .map((l) => `agent ${h} applied revision ${l.revision} (${l.via}) with ${l.errors} errors`),
  );
}

/** `lattice_agent_resyncs_total` of the controller, by kind. */
export async function resyncCounters(api: Api): Promise<{ diff: number; snapshot: number }> {
  const r = await api.call('GET', '/metrics');
  const text = typeof r.body === 'string' ? r.body : '';
  const count = (kind: string) =>
    Number(
      new RegExp(`lattice_agent_resyncs_total\\{kind="${kind}"\\} (\\d+)`).exec(text)?.[1] ?? 0,
    );
  return { diff: count('diff'), snapshot: count('snapshot') };
}

/** The revision log's lock (`revisions/revision-log.ts`), held by a batch from BEGIN to COMMIT. */
const REVISION_LOCK = 0x1a77_1ce1;

/**
 * Waits (up to `timeoutMs`) until a commit batch is inside its transaction — some session
 * of the database holds the revision lock — and returns that backend's pid (undefined if
 * none was seen in time): the moment to strike for a fault in the middle of a commit.
 */
export async function waitForCommitter(
  databaseUrl: string,
  timeoutMs: number,
): Promise<number | undefined> {
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const r = await c.query<{ pid: number }>(
        `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = 0 AND objid = $1 AND objsubid = 1
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        [REVISION_LOCK],
      );
      if (r.rows.length > 0) return r.rows[0].pid;
    }
    return undefined;
  } finally {
    await c.end();
  }
}
