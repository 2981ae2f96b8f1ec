import { useState } from 'preact/hooks';
import type { Network } from '../api';
import type { Store } from '../store';
import { Meter, Pager, useStore } from './common';

const PAGE = 100;

export function segment(n: Network): string {
  if (n.vlanId !== null) return `VLAN ${n.vlanId}`;
  if (n.vni !== null) return `VNI ${n.vni}`;
  return '–';
}

export function variant(n: Network): string {
  return n.encapsulation ?? n.routing ?? n.transport ?? '';
}

export function NetworksView({ store }: { store: Store }) {
  useStore(store);
  const [q, setQ] = useState('');
  const [page, setPage] = useState(0);
  const needle = q.trim().toLowerCase();
  const rows = store.networks.filter(
    (n) => !needle || n.name.toLowerCase().includes(needle) || n.cidr.includes(needle),
  );
  const byModel = new Map<string, Network[]>();
  const shown = rows.slice(page * PAGE, (page + 1) * PAGE);
  for (const n of shown) byModel.set(n.model, [...(byModel.get(n.model) ?? []), n]);
  const models = [...byModel.keys()].sort();
  return (
    <div>
      <div class="toolbar">
        <input
          type="search"
          placeholder="filter networks by name or CIDR"
          value={q}
          onInput={(e) => {
            setQ(e.currentTarget.value);
            setPage(0);
          }}
        />
        <span class="muted">
          {store.agg
            ? `instance counts as of ${new Date(store.agg.at).toLocaleTimeString()}`
            : 'loading…'}
        </span>
      </div>
      {models.map((model) => (
        <section class="group">
          <h2>
            {model} <span class="muted">({byModel.get(model)!.length})</span>
          </h2>
          <table class="grid" data-testid={`networks-${model}`}>
            <thead>
              <tr>
                <th>network</th>
                <th>variant</th>
                <th>VLAN / VNI</th>
                <th>CIDR</th>
                <th>gateway</th>
                <th class="num">instances</th>
                <th class="num">hosts spanned</th>
              </tr>
            </thead>
            <tbody>
              {byModel.get(model)!.map((n) => (
                <tr key={n.id} data-network={n.name}>
                  <td>
                    <b>{n.name}</b>
                  </td>
                  <td>{variant(n)}</td>
                  <td>{segment(n)}</td>
                  <td>{n.cidr}</td>
                  <td>{n.gateway}</td>
                  <td class="num">{n.instanceCount}</td>
                  <td class="num">{n.hostCount}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ))}
      {rows.length === 0 && <p class="empty">No network.</p>}
      <Pager page={page} pages={Math.ceil(rows.length / PAGE)} onPage={setPage} />
    </div>
  );
}

export function RoutersView({ store }: { store: Store }) {
  useStore(store);
  const model = new Map(store.networks.map((n) => [n.name, n]));
  return (
    <table class="grid" data-testid="routers">
      <thead>
        <tr>
          <th>router</th>
          <th>networks attached</th>
          <th class="num">instances reachable</th>
        </tr>
      </thead>
      <tbody>
        {store.routers.map((r) => (
          <tr key={r.id} data-router={r.name}>
            <td>
              <b>{r.name}</b>
            </td>
            <td>
              {r.networks.map((n) => (
                <span class="tag">
                  {n} <span class="muted">{model.get(n)?.cidr}</span>
                </span>
              ))}
            </td>
            <td class="num">
              {r.networks.reduce((s, n) => s + (store.agg?.perNetwork.get(n) ?? 0), 0)}
            </td>
          </tr>
        ))}
        {store.routers.length === 0 && (
          <tr>
            <td colSpan={3} class="empty">
              No router.
            </td>
          </tr>
        )}
      </tbody>
    </table>
  );
}

export function PoolsView({ store }: { store: Store }) {
  useStore(store);
  const p = store.pools;
  if (!p) return <p class="muted">Loading pools…</p>;
  const users = (kind: 'vlan' | 'vni') =>
    store.networks.filter((n) => (kind === 'vlan' ? n.vlanId !== null : n.vni !== null));
  return (
    <div class="pools" data-testid="pools">
      {(['vlan', 'vni'] as const).map((kind) => {
        const u = p[kind];
        return (
          <section class="card" data-pool={kind}>
            <h2>{kind === 'vlan' ? 'VLAN ids' : 'VNIs'}</h2>
            <p>
              range {u.start}–{u.end}: <b>{u.used}</b> used of {u.size}, {u.free} free
              {u.usedOutsideRange > 0 && (
                <span class="warn"> · {u.usedOutsideRange} outside the range</span>
              )}
            </p>
            <Meter used={u.used} size={u.size} />
            <p class="muted">
              {users(kind)
                .slice(0, 40)
                .map((n) => `${n.name} (${kind === 'vlan' ? n.vlanId : n.vni})`)
                .join(', ')}
              {users(kind).length > 40 && ` and ${users(kind).length - 40} more`}
            </p>
          </section>
        );
      })}
    </div>
  );
}
