import { useState } from 'preact/hooks';
import { ApiError, type Trace } from '../api';
import type { Store } from '../store';

/** "How does a packet from A reach B, or why not": GET /trace, drawn hop by hop. */
export function TraceView({ store }: { store: Store }) {
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [proto, setProto] = useState('icmp');
  const [port, setPort] = useState('');
  const [trace, setTrace] = useState<Trace | undefined>();
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const run = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    setTrace(undefined);
    const q = new URLSearchParams({ from: from.trim(), to: to.trim(), proto });
    if (proto !== 'icmp' && port) q.set('port', port);
    try {
      setTrace(await store.api.get<Trace>(`/trace?${q.toString()}`));
    } catch (err) {
      setError(
        err instanceof ApiError &&
          err.status === 404 &&
          /Cannot GET|no route|not found: \/api/i.test(err.message)
          ? 'This controller has no trace API.'
          : err instanceof Error
            ? err.message
            : String(err),
      );
    } finally {
      setBusy(false);
    }
  };
  const dropAt = trace?.verdict === 'dropped' ? trace.hops.length - 1 : -1;
  return (
    <div class="trace">
      <form class="toolbar" onSubmit={(e) => void run(e)} data-testid="trace-form">
        <label>
          from instance
          <input
            name="from"
            value={from}
            onInput={(e) => setFrom(e.currentTarget.value)}
            placeholder="web1"
            required
          />
        </label>
        <label>
          to instance or IPv4
          <input
            name="to"
            value={to}
            onInput={(e) => setTo(e.currentTarget.value)}
            placeholder="db2 or 10.0.0.7"
            required
          />
        </label>
        <label>
          protocol
          <select name="proto" value={proto} onChange={(e) => setProto(e.currentTarget.value)}>
            <option>icmp</option>
            <option>tcp</option>
            <option>udp</option>
          </select>
        </label>
        {proto !== 'icmp' && (
          <label>
            port
            <input
              name="port"
              type="number"
              min={1}
              max={65535}
              value={port}
              onInput={(e) => setPort(e.currentTarget.value)}
            />
          </label>
        )}
        <button type="submit" disabled={busy}>
          Trace
        </button>
        <span class="muted">computed from desired state; no packet is sent</span>
      </form>
      {error && <p class="error">{error}</p>}
      {trace && (
        <div>
          <p class={`verdict ${trace.verdict}`} data-testid="verdict">
            {trace.verdict === 'delivered'
              ? '✔ delivered'
              : trace.verdict === 'egress'
                ? '↗ left Lattice (egress)'
                : `✘ dropped${trace.reason ? `: ${trace.reason}` : ''}`}
          </p>
          <ol class="hops" data-testid="hops">
            {trace.hops.map((h, i) => (
              <li class={i === dropAt ? 'drop' : ''} data-step={h.step}>
                <div class="step">
                  <b>{h.step}</b>
                  {h.host && <span class="tag">{h.host}</span>}
                </div>
                <div>{h.detail}</div>
                {i === dropAt && trace.reason && trace.reason !== h.detail && (
                  <div class="reason">{trace.reason}</div>
                )}
                {h.resources && h.resources.length > 0 && (
                  <div class="resources">
                    {h.resources.map((r) => (
                      <code>{r}</code>
                    ))}
                  </div>
                )}
              </li>
            ))}
          </ol>
        </div>
      )}
    </div>
  );
}
