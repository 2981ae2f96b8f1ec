import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { DesiredStateService } from '../desired-state/desired-state.service.js';
import { CompactionService } from '../revisions/compaction.service.js';
import { RevisionLog } from '../revisions/revision-log.js';

/**
 * Prometheus metrics on a registry of this application's own (several controllers may
 * share a process in tests). Inventory gauges are read from the database at scrape time,
 * with one query per scrape: the registry collects every metric at once, so each
 * inventory gauge's collect() awaits the same refresh. The host gauges, which need the
 * agent sessions of this replica, are in host-metrics.ts.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  constructor(
    ds: DataSource,
    log: RevisionLog,
    compaction: CompactionService,
    desired: DesiredStateService,
  ) {
    const registers = [this.registry];
    const refresh = async () => {
      const [r] = await ds.query<Record<string, string>[]>(`
        SELECT (SELECT count(*) FROM hosts) AS hosts, (SELECT count(*) FROM networks) AS networks,
               (SELECT count(*) FROM instances) AS instances, (SELECT count(*) FROM routers) AS routers,
               (SELECT count(*) FROM host_blocks) AS blocks, (SELECT coalesce(max(revision), 0) FROM revisions) AS revision,
               (SELECT coalesce(min(revision), 0) FROM revisions) AS oldest_revision,
               (SELECT count(*) FROM networks WHERE vlan_id IS NOT NULL) AS vlan,
               (SELECT count(*) FROM networks WHERE vni IS NOT NULL) AS vni`);
      for (const k of ['hosts', 'networks', 'instances', 'routers', 'blocks'])
        objects.set({ kind: k }, Number(r[k]));
      revision.set(Number(r.revision));
      oldestRevision.set(Number(r.oldest_revision));
      pool.set({ pool: 'vlan' }, Number(r.vlan));
      pool.set({ pool: 'vni' }, Number(r.vni));
      const byModel = await ds.query<{ model: string; n: string }[]>(
        'SELECT model, count(*) AS n FROM networks GROUP BY model',
      );
      networks.reset();
      for (const m of byModel) networks.set({ model: m.model }, Number(m.n));
    };
    let inflight: Promise<void> | undefined;
    const refreshed = () =>
      (inflight ??= refresh().finally(() => {
        inflight = undefined;
      }));
    const objects = new Gauge({
      name: 'lattice_objects',
      help: 'Stored objects by kind',
      labelNames: ['kind'],
      registers,
      collect: refreshed,
    });
    const networks = new Gauge({
      name: 'lattice_networks',
      help: 'Networks by model',
      labelNames: ['model'],
      registers,
      collect: refreshed,
    });
    const revision = new Gauge({
      name: 'lattice_revision',
      help: 'Latest committed revision',
      registers,
      collect: refreshed,
    });
    const oldestRevision = new Gauge({
      name: 'lattice_revision_oldest',
      help: 'Oldest revision kept in the revision log (older ones were compacted)',
      registers,
      collect: refreshed,
    });
    const pool = new Gauge({
      name: 'lattice_pool_used',
      help: 'Ids in use per pool',
      labelNames: ['pool'],
      registers,
      collect: refreshed,
    });
    new Gauge({
      name: 'lattice_commit_batches',
      help: 'Transactions committed by the revision log (group commit) since start',
      registers,
      collect() {
        this.set(log.stats().batches);
      },
    });
    new Gauge({
      name: 'lattice_commit_batched_requests',
      help: 'Mutating requests run in those transactions since start',
      registers,
      collect() {
        this.set(log.stats().requests);
      },
    });
    new Counter({
      name: 'lattice_revisions_compacted_total',
      help: 'Revisions deleted from the revision log by this process (compaction)',
      registers,
      collect() {
        this.reset();
        this.inc(compaction.stats().compacted);
      },
    });
    // The engine's own counters, since it was last built (at start and after a recompute).
    const engine: [
      string,
      string,
      (e: NonNullable<ReturnType<typeof desired.engineStats>>) => number,
    ][] = [
      [
        'lattice_engine_resource_ops',
        "Resources set or deleted on hosts' desired states",
        (e) => e.resourceOps,
      ],
      [
        'lattice_engine_hosts_changed',
        'Hosts whose desired state a revision changed, summed over revisions',
        (e) => e.hostsChanged,
      ],
      [
        'lattice_engine_shares_computed',
        '(network, host) shares computed from scratch',
        (e) => e.sharesComputed,
      ],
      [
        'lattice_engine_policy_membership_changes',
        'Instances entering or leaving a policy peer set',
        (e) => e.policy.membershipChanges,
      ],
      [
        'lattice_engine_policy_chains_computed',
        'Instances whose policy chains were computed',
        (e) => e.policy.instancesComputed,
      ],
      ['lattice_engine_policy_sets', 'Policy peer sets in use', (e) => e.policy.sets],
      [
        'lattice_engine_policy_selected_instances',
        'Instances selected by at least one policy',
        (e) => e.policy.selectedInstances,
      ],
    ];
    for (const [name, help, read] of engine) {
      new Gauge({
        name,
        help: `${help} (since the engine was last built)`,
        registers,
        collect() {
          const e = desired.engineStats();
          if (e) this.set(read(e));
        },
      });
    }
    collectDefaultMetrics({ register: this.registry, prefix: 'lattice_process_' });
  }
}
