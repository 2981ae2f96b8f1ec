import { useEffect, useState } from 'preact/hooks';
import { ApiError, type Instance } from '../api';
import type { Store } from '../store';
import { useStore } from './common';

const PAGE = 50;

/**
 * Instances a page at a time from the API (`?limit=&cursor=`, with the network and host
 * filters the API has); a search looks the name or id up directly. Never more than one
 * page in the DOM.
 */
export function InstancesView({ store, role }: { store: Store; role: 'admin' | 'viewer' }) {
  useStore(store);
  const [network, setNetwork] = useState('');
  const [host, setHost] = useState('');
  const [q, setQ] = useState('');
  const [search, setSearch] = useState('');
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [rows, setRows] = useState<Instance[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState('');
  const [loading, setLoading] = useState(true);
  const cursor = cursors[cursors.length - 1];

  useEffect(() => {
    let gone = false;
    const load = async () => {
      try {
        if (search) {
          try {
            const i = await store.api.get<Instance>(`/instances/${encodeURIComponent(search)}`);
            if (!gone) {
              setRows([i]);
              setNext(null);
            }
          } catch (e) {
            if (!(e instanceof ApiError && e.status === 404)) throw e;
            if (!gone) {
              setRows([]);
              setNext(null);
            }
          }
        } else {
          const extra: Record<string, string> = {};
          if (network) extra.network = network;
          if (host) extra.host = host;
          const p = await store.api.page<Instance>('/instances', PAGE, cursor, extra);
          if (!gone) {
            setRows(p.items);
            setNext(p.nextCursor);
          }
        }
        if (!gone) setError('');
      } catch (e) {
        if (!gone) setError(e instanceof Error ? e.message : String(e));
      } finally {
        if (!gone) setLoading(false);
      }
    };
    void load();
    return () => {
      gone = true;
    };
  }, [store, network, host, search, cursor, store.instancesVersion]);

  const reset = () => setCursors([null]);
  const remove = async (i: Instance) => {
    if (!confirm(`Delete instance ${i.name}?`)) return;
    try {
      await store.api.request('DELETE', `/instances/${encodeURIComponent(i.id)}`);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };

  return (
    <div>
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          setSearch(q.trim());
          reset();
        }}
      >
        <input
          type="search"
          name="q"
          placeholder="instance name or id"
          value={q}
          onInput={(e) => {
            setQ(e.currentTarget.value);
            if (!e.currentTarget.value) setSearch('');
          }}
        />
        <button type="submit">Find</button>
        <label>
          network
          <select
            value={network}
            onChange={(e) => {
              setNetwork(e.currentTarget.value);
              reset();
            }}
          >
            <option value="">any</option>
            {store.networks.map((n) => (
              <option value={n.name}>{n.name}</option>
            ))}
          </select>
        </label>
        <label>
          host
          <select
            value={host}
            onChange={(e) => {
              setHost(e.currentTarget.value);
              reset();
            }}
          >
            <option value="">any</option>
            {store.hosts.map((h) => (
              <option value={h.name}>{h.name}</option>
            ))}
          </select>
        </label>
        <span class="muted">{store.counts.instances ?? '…'} instances in all</span>
      </form>
      {error && <p class="error">{error}</p>}
      <table class="grid" data-testid="instances">
        <thead>
          <tr>
            <th>instance</th>
            <th>network</th>
            <th>host</th>
            <th>IP</th>
            <th>MAC</th>
            <th>state</th>
            {role === 'admin' && <th />}
          </tr>
        </thead>
        <tbody>
          {rows.map((i) => (
            <tr key={i.id} data-instance={i.name}>
              <td>
                <b>{i.name}</b>
              </td>
              <td>{i.network}</td>
              <td>{i.host}</td>
              <td>{i.ip}</td>
              <td class="mono">{i.mac}</td>
              <td>{i.state}</td>
              {role === 'admin' && (
                <td>
                  <button class="danger small" data-action="delete" onClick={() => void remove(i)}>
                    delete
                  </button>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {!loading && rows.length === 0 && <p class="empty">No instance matches.</p>}
      <div class="pager">
        <button disabled={cursors.length <= 1} onClick={() => setCursors(cursors.slice(0, -1))}>
          ‹ Previous
        </button>
        <span>page {cursors.length}</span>
        <button disabled={!next} onClick={() => setCursors([...cursors, next])}>
          Next ›
        </button>
      </div>
    </div>
  );
}
