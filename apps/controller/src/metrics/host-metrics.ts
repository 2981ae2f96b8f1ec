import { Injectable } from '@nestjs/common';
import { Gauge } from 'prom-client';
import { DataSource } from 'typeorm';
import { AgentSessions } from '../agents/agent-sessions.service.js';
import { MetricsService } from './metrics.service.js';

/** A host as `GET /hosts` shows it, reduced to what the gauges count. */
export interface HostSync {
  connected: boolean;
  inSync: boolean;
  state: 'in_sync' | 'lagging' | 'never_connected';
}

/**
 * The host gauges, counted as the API counts: from the stored row with the live status of
 * an agent connected to this replica laid over it, exactly as hosts.service.ts `hostView`
 * does (the table's agent status is written every 100 ms, the live one is current).
 */
export function hostSync(
  row: { connected: boolean; seen: boolean; applied: number; desired: number },
  live: { applied: number } | undefined,
): HostSync {
  const connected = live ? true : row.connected;
  const seen = live ? true : row.seen;
  const applied = live ? live.applied : row.applied;
  // hostView: in sync once an agent has reported and has applied every revision for it.
  const inSync = seen && applied >= row.desired;
  return { connected, inSync, state: !seen ? 'never_connected' : inSync ? 'in_sync' : 'lagging' };
}

/**
 * `lattice_hosts_in_sync`, `lattice_hosts{state}` and `lattice_hosts_connected`, read at
 * scrape time (one query per scrape, shared by the three gauges), on the application's
 * registry. A provider of its own because it needs the agent sessions, which need the
 * registry (AgentMetrics).
 */
@Injectable()
export class HostMetrics {
  constructor(ds: DataSource, agents: AgentSessions, metrics: MetricsService) {
    const registers = [metrics.registry];
    const refresh = async () => {
      const rows = await ds.query<
        {
          id: string;
          agent_connected: boolean;
          seen: boolean;
          applied_revision: string;
          desired_revision: string;
        }[]
      >(
        `SELECT id, agent_connected, agent_last_seen IS NOT NULL AS seen, applied_revision, desired_revision
           FROM hosts`,
      );
      const states = { in_sync: 0, lagging: 0, never_connected: 0 };
      let connected = 0;
      let inSync = 0;
      for (const r of rows) {
        const h = hostSync(
          {
            connected: r.agent_connected,
            seen: r.seen,
            applied: Number(r.applied_revision),
            desired: Number(r.desired_revision),
          },
          agents.live(r.id),
        );
        states[h.state]++;
        if (h.connected) connected++;
        if (h.inSync) inSync++;
      }
      hostsInSync.set(inSync);
      hostsConnected.set(connected);
      for (const [state, n] of Object.entries(states)) hosts.set({ state }, n);
    };
    let inflight: Promise<void> | undefined;
    const refreshed = () =>
      (inflight ??= refresh().finally(() => {
        inflight = undefined;
      }));
    const hostsInSync = new Gauge({
      name: 'lattice_hosts_in_sync',
      help: 'Hosts shown `inSync: true` by the API: their agent reported and applied their desired revision',
      registers,
      collect: refreshed,
    });
    const hosts = new Gauge({
      name: 'lattice_hosts',
      help: 'Hosts by agent state: in_sync (as the API shows it), lagging (an agent reported, behind its desired revision), never_connected (no agent ever reported)',
      labelNames: ['state'],
      registers,
      collect: refreshed,
    });
    const hostsConnected = new Gauge({
      name: 'lattice_hosts_connected',
      help: 'Hosts whose agent the API shows connected (to any replica)',
      registers,
      collect: refreshed,
    });
  }
}
