import { useEffect, useState } from 'preact/hooks';
import type { Host } from '../api';
import type { Store } from '../store';
import { ago, Pager, useStore } from './common';

const PAGE = 100;
const FILTERS = {
  all: () => true,
  behind: (h: Host) => !h.inSync,
  disconnected: (h: Host) => !h.agent.connected,
  errors: (h: Host) => h.agent.errors.length > 0,
  drift: (h: Host) => h.agent.drift.length > 0,
} as const;
type Filter = keyof typeof FILTERS;

export function hostState(h: Host): 'disconnected' | 'behind' | 'errors' | 'in-sync' {
  if (!h.agent.connected) return 'disconnected';
  if (!h.inSync) return 'behind';
  if (h.agent.errors.length) return 'errors';
  return 'in-sync';
}

export function FleetView({ store }: { store: Store }) {
  useStore(store);
  const [q, setQ] = useState('');
  const [filter, setFilter] = useState<Filter>('all');
  const [page, setPage] = useState(0);
  const [, tick] = useState(0);
  useEffect(() => {
    const t = setInterval(() => tick((x) => x + 1), 5000);
    return () => clearInterval(t);
  }, []);
  const needle = q.trim().toLowerCase();
  const rows = store.hosts.filter(
    (h) =>
      FILTERS[filter](h) &&
      (!needle || h.name.toLowerCase().includes(needle) || h.underlayIp.includes(needle)),
  );
  const pages = Math.ceil(rows.length / PAGE);
  const shown = rows.slice(page * PAGE, (page + 1) * PAGE);
  const count = (f: Filter) => store.hosts.filter(FILTERS[f]).length;
  return (
    <div>
      <div class="toolbar">
        <input
          type="search"
          placeholder="filter hosts by name or underlay IP"
          value={q}
          onInput={(e) => {
            setQ(e.currentTarget.value);
            setPage(0);
          }}
        />
        <div class="chips">
          {(Object.keys(FILTERS) as Filter[]).map((f) => (
            <button
              class={f === filter ? 'chip active' : 'chip'}
              onClick={() => {
                setFilter(f);
                setPage(0);
              }}
            >
              {f === 'behind' ? 'out of sync' : f} ({count(f)})
            </button>
          ))}
        </div>
      </div>
      <table class="grid" data-testid="hosts">
        <thead>
          <tr>
            <th>host</th>
            <th>underlay</th>
            <th>agent</th>
            <th>state</th>
            <th class="num">desired</th>
            <th class="num">applied</th>
            <th class="num">lag</th>
            <th>errors</th>
            <th>drift</th>
            <th>last seen</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((h) => {
            const state = hostState(h);
            const lag = Math.max(0, h.desiredRevision - h.appliedRevision);
            return (
              <tr key={h.id} data-host={h.name} data-state={state}>
                <td>
                  <b>{h.name}</b>
                </td>
                <td>{h.underlayIp}</td>
                <td>
                  <span class={`dot ${h.agent.connected ? 'ok' : 'bad'}`} />
                  {h.agent.connected ? 'connected' : 'disconnected'}
                </td>
                <td>
                  <span class={`badge ${state}`} data-testid="state">
                    {state === 'in-sync' ? 'in sync' : state === 'behind' ? 'out of sync' : state}
                  </span>
                </td>
                <td class="num">{h.desiredRevision}</td>
                <td class="num">{h.appliedRevision}</td>
                <td class={`num ${lag > 0 ? 'warn' : ''}`}>{lag}</td>
                <td title={h.agent.errors.map((e) => `${e.key}: ${e.message}`).join('\n')}>
                  {h.agent.errors.length ? (
                    <span class="bad-text">
                      {h.agent.errors.length} · {h.agent.errors[0].key}
                    </span>
                  ) : (
                    '–'
                  )}
                </td>
                <td title={h.agent.drift.map((e) => `${e.key}: ${e.message}`).join('\n')}>
                  {h.agent.drift.length ? (
                    <span class="warn">
                      {h.agent.drift.length} · {h.agent.drift[0].key}
                    </span>
                  ) : (
                    '–'
                  )}
                </td>
                <td>{ago(h.agent.lastSeen)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {rows.length === 0 && <p class="empty">No host matches.</p>}
      <Pager page={page} pages={pages} onPage={setPage}>
        <span class="muted">{rows.length} hosts</span>
      </Pager>
    </div>
  );
}
