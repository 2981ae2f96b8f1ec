/** What each fault did and what was seen; written to bench/results/faults-summary.json. */
export interface FaultSummary {
  seed: number;
  startedAt: string;
  node: string;
  durationMs: number;
  controllerKill: { injected: number; rounds: Record<string, any>[] };
  postgres: { injected: number; byKind: Record<string, number>; rounds: Record<string, any>[] };
  agentKill: { injected: number; rounds: Record<string, any>[] };
  network: { injected: number; events: Record<string, any>[] };
  failures: string[];
  controllerLogs: Record<string, { starts: number; errors: number; warnings: number }>;
}

export function newSummary(seed: number, started: number): FaultSummary {
  return {
    seed,
    startedAt: new Date(started).toISOString(),
    node: process.version,
    durationMs: 0,
    controllerKill: { injected: 0, rounds: [] },
    postgres: { injected: 0, byKind: {}, rounds: [] },
    agentKill: { injected: 0, rounds: [] },
    network: { injected: 0, events: [] },
    failures: [],
    controllerLogs: {},
  };
}

const range = (xs: number[]) =>
  xs.length === 0 ? '-' : `${Math.min(...xs)}–${Math.max(...xs)} ms`.replace(/^(\d+)–\1 /, '$1 ');

const sum = (rs: Record<string, any>[], f: (r: Record<string, any>) => number) =>
  rs.reduce((n, r) => n + (f(r) || 0), 0);

function count(rs: Record<string, any>[], key: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rs)
    for (const [k, v] of Object.entries(r[key] ?? {}))
      if (typeof v === 'number') out[k] = (out[k] ?? 0) + v;
  return out;
}

const list = (o: Record<string, number>) =>
  Object.entries(o)
    .map(([k, v]) => `${k} ×${v}`)
    .join(', ') || 'none';

/** A few lines per fault: how often it was injected and what was observed. */
export function describeSummary(s: FaultSummary): string {
  const out = [
    `fault suite: seed ${s.seed} (LATTICE_FAULT_SEED=${s.seed} replays its random choices), ${Math.round(s.durationMs / 1000)} s`,
  ];
  const ck = s.controllerKill.rounds;
  const resumed: Record<string, number> = {};
  for (const r of ck)
    for (const via of Object.values<string>(r.resumedWith ?? {}))
      resumed[via] = (resumed[via] ?? 0) + 1;
  const unanswered = (rs: Record<string, any>[]) => {
    const u = count(rs, 'unansweredWrites');
    const answers = rs.flatMap((r) => (r.unansweredWrites?.committedAnswers ?? []) as string[]);
    return `${u.created ?? 0} creates, ${u.deleted ?? 0} deletes, ${u.moved ?? 0} moves, ${u.bulksIn ?? 0} bulks (whole) committed${answers.length > 0 ? ` (answered: ${answers.join('; ')})` : ''}; ${u.notCreated ?? 0} creates, ${u.notDeleted ?? 0} deletes, ${u.notMoved ?? 0} moves, ${u.bulksOut ?? 0} bulks did not`;
  };
  out.push(
    `controller kill -9: ${s.controllerKill.injected} injected (${ck.filter((r) => r.killedInACommitBatch).length} inside a commit batch, ${ck.filter((r) => r.writesDuringRestart).length} with writes during the restart); ` +
      `requests in flight at the kill: ${ck.map((r) => r.requestsInFlightAtKill).join(', ')}; answers: ${list(count(ck, 'statuses'))}; ` +
      `writes without an answer: ${unanswered(ck)}; restart to healthy ${range(ck.map((r) => r.restartToHealthyMs))}; ` +
      `agents resumed with ${list(resumed)} (in sync at the kill: ${sum(ck, (r) => r.agentsInSyncAtKill)} of ${sum(ck, (r) => Object.keys(r.resumedWith ?? {}).length)})`,
  );
  const pr = s.postgres.rounds;
  out.push(
    `PostgreSQL: ${s.postgres.injected} injected (${list(s.postgres.byKind)}; ${pr.filter((r) => r.struckInACommitBatch).length} inside a commit batch); ` +
      `controller up throughout: ${pr.every((r) => r.controllerUp)}; writes answered ${list(count(pr, 'writeStatuses'))}; ` +
      `reads during the outages ${list(count(pr, 'probeStatuses'))}; writes without an answer: ${unanswered(pr)}; ` +
      `batches failed after planning ${sum(pr, (r) => r.batchesFailedAfterPlanning)} (committed after all: ${sum(pr, (r) => r.ofWhichCommittedAnyway)}; snapshots sent ${sum(pr, (r) => r.snapshotsSent)}); ` +
      `back to healthy ${range(pr.map((r) => r.restartToControllerHealthyMs))}, agents converged ${range(pr.map((r) => r.healthyToAgentsConvergedMs))} after`,
  );
  const ak = s.agentKill.rounds;
  out.push(
    `agent kill -9 mid-apply: ${s.agentKill.injected} injected (killed ${ak.map((r) => r.killed).join('; ')}); ` +
      `restored revisions ${ak.map((r) => `${r.restoredRevision} (acknowledged ${r.lastAcknowledgedBeforeKill})`).join(', ')}; ` +
      `resumed with ${ak.map((r) => r.resumedWith).join(', ')}; converged ${range(ak.map((r) => r.convergedMs))}`,
  );
  out.push(
    `network: ${s.network.injected} injected; ` +
      s.network.events
        .map((e) =>
          e.fault === 'blackhole'
            ? `blackhole: the agent noticed after ${e.agentDetectedMs} ms, the controller dropped the session after ${e.controllerDroppedSessionMs} ms, converged ${e.healedToConvergedMs} ms after the heal (${e.resumedWith})`
            : `reset: converged ${e.resetToConvergedMs} ms after (${e.resumedWith})`,
        )
        .join('; '),
  );
  for (const [k, l] of Object.entries(s.controllerLogs))
    out.push(`controller log ${k}: ${l.starts} starts, ${l.errors} errors, ${l.warnings} warnings`);
  if (s.failures.length > 0) out.push(`FAILURES:\n  ${s.failures.join('\n  ')}`);
  return out.join('\n- ');
}
