import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { AGENTS_CHANNEL, AgentSessions } from '../agents/agent-sessions.service.js';
import { DesiredStateService } from './desired-state.service.js';

const RETRY_MS = 1000;

/**
 * Scale-out: several controller replicas share one PostgreSQL. Each commit sends
 * `NOTIFY lattice_revisions`; every replica LISTENs on a connection of its own and, when a
 * revision it has not seen is announced, catches its engine up from the log — which
 * publishes the per-host diffs to the agents connected to it. If the listening connection
 * drops, it reconnects and catches up once, so a missed notification costs latency, never
 * a lost change. It also LISTENs on `lattice_agents`: a token rotation or host delete
 * committed by any replica ends that host's agent session wherever it is connected.
 */
@Injectable()
export class RevisionListener implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly log = new Logger('revisions');
  private client: pg.Client | undefined;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly ds: DataSource,
    private readonly desired: DesiredStateService,
    private readonly agents: AgentSessions,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.connect();
  }

  async onModuleDestroy(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    await this.client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const options = this.ds.options as { url?: string };
    const client = new pg.Client({ connectionString: options.url });
    client.on('notification', (n) => {
      if (n.channel === AGENTS_CHANNEL) void this.agents.verify([n.payload ?? '']);
      else if (Number(n.payload) > this.desired.currentRevision) void this.refresh();
    });
    client.on('error', (e) => this.log.warn(`revision listener: ${e.message}`));
    client.on('end', () => {
      if (this.client === client && !this.closed) this.later();
    });
    try {
      await client.connect();
      await client.query(`LISTEN lattice_revisions; LISTEN ${AGENTS_CHANNEL}`);
      this.client = client;
      // What was announced while not listening: caught up now.
      await this.refresh();
      await this.agents.verify();
    } catch (e) {
      this.log.warn(
        `revision listener not connected: ${e instanceof Error ? e.message : String(e)}`,
      );
      await client.end().catch(() => undefined);
      this.later();
    }
  }

  private later(): void {
    this.client = undefined;
    clearTimeout(this.retry);
    this.retry = setTimeout(() => void this.connect(), RETRY_MS);
    this.retry.unref();
  }

  private async refresh(): Promise<void> {
    await this.desired
      .refresh()
      .catch((e: unknown) =>
        this.log.warn(`catch-up failed: ${e instanceof Error ? e.message : String(e)}`),
      );
  }
}
