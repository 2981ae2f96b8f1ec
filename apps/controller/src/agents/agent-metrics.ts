import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram } from 'prom-client';
import { MetricsService } from '../metrics/metrics.service.js';

/** The agent-facing metrics, on the application's registry. */
@Injectable()
export class AgentMetrics {
  readonly connected: Gauge;
  readonly frames: Counter<'type'>;
  readonly bytes: Counter<'type'>;
  readonly resyncs: Counter<'kind'>;
  readonly drift: Counter<'host'>;
  readonly ackLatency: Histogram;
  readonly lag: Gauge<'host'>;
  readonly dropped: Counter<'reason'>;

  constructor(metrics: MetricsService) {
    const registers = [metrics.registry];
    this.connected = new Gauge({
      name: 'lattice_agents_connected',
      help: 'Agents connected to this controller',
      registers,
    });
    this.frames = new Counter({
      name: 'lattice_agent_frames_sent_total',
      help: 'Diff and snapshot frames sent to agents',
      labelNames: ['type'],
      registers,
    });
    this.bytes = new Counter({
      name: 'lattice_agent_bytes_sent_total',
      help: 'Bytes of diff and snapshot frames sent to agents',
      labelNames: ['type'],
      registers,
    });
    this.resyncs = new Counter({
      name: 'lattice_agent_resyncs_total',
      help: 'Agent (re)connections by how they were brought up to date',
      labelNames: ['kind'],
      registers,
    });
    this.drift = new Counter({
      name: 'lattice_agent_drift_items_total',
      help: 'Drift items reported by agents',
      labelNames: ['host'],
      registers,
    });
    this.ackLatency = new Histogram({
      name: 'lattice_agent_ack_seconds',
      help: 'Time from sending a revision to an agent to its acknowledgement',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.dropped = new Counter({
      name: 'lattice_agent_sessions_dropped_total',
      help: 'Agent sessions ended by the controller: claim (a hello claiming a revision never issued), queue (not reading), revoked (token rotated or host deleted)',
      labelNames: ['reason'],
      registers,
    });
    this.lag = new Gauge({
      name: 'lattice_agent_revision_lag',
      help: 'Revisions a connected agent is behind its desired revision',
      labelNames: ['host'],
      registers,
    });
  }
}
