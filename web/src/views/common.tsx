import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { Store } from '../store';

export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function Pager(p: {
  page: number;
  pages: number;
  onPage: (n: number) => void;
  children?: ComponentChildren;
}) {
  return (
    <div class="pager">
      <button disabled={p.page <= 0} onClick={() => p.onPage(p.page - 1)}>
        ‹ Previous
      </button>
      <span>
        page {p.page + 1} of {Math.max(1, p.pages)}
      </span>
      <button disabled={p.page + 1 >= p.pages} onClick={() => p.onPage(p.page + 1)}>
        Next ›
      </button>
      {p.children}
    </div>
  );
}

export function Meter({ used, size }: { used: number; size: number }) {
  const pct = size > 0 ? (100 * used) / size : 0;
  return (
    <div class="meter" title={`${used} of ${size} (${pct.toFixed(2)}%)`}>
      <div style={{ width: `${Math.max(pct, used > 0 ? 0.5 : 0)}%` }} />
    </div>
  );
}

/** Re-renders the caller whenever the store changes (at most once per frame). */
export function useStore(store: Store): number {
  const [n, setN] = useState(0);
  useEffect(() => {
    let frame = 0;
    const off = store.subscribe(() => {
      if (frame) return;
      frame = requestAnimationFrame(() => {
        frame = 0;
        setN((x) => x + 1);
      });
    });
    return () => {
      off();
      cancelAnimationFrame(frame);
    };
  }, [store]);
  return n;
}
