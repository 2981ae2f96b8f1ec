import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { useEffect, useRef } from 'preact/hooks';
import type { ConvergedSample, Store } from '../store';
import { useStore } from './common';

const BUCKET_MS = 15_000;
const WINDOW_MS = 15 * 60_000;

export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

/** p50 and p99 of commit-to-applied times per 15-second bucket over the last 15 minutes. */
function series(samples: ConvergedSample[], now: number): uPlot.AlignedData {
  const start = Math.floor((now - WINDOW_MS) / BUCKET_MS) * BUCKET_MS;
  const xs: number[] = [];
  const p50: (number | null)[] = [];
  const p99: (number | null)[] = [];
  const n: number[] = [];
  for (let t = start; t <= now; t += BUCKET_MS) {
    const v = samples
      .filter((s) => s.at >= t && s.at < t + BUCKET_MS)
      .map((s) => s.ms)
      .sort((a, b) => a - b);
    xs.push(t / 1000);
    p50.push(v.length ? quantile(v, 0.5) : null);
    p99.push(v.length ? quantile(v, 0.99) : null);
    n.push(v.length);
  }
  return [xs, p50, p99];
}

export function ConvergenceView({ store }: { store: Store }) {
  useStore(store);
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot>();
  useEffect(() => {
    const p = new uPlot(
      {
        width: Math.max(400, (box.current?.clientWidth ?? 800) - 10),
        height: 320,
        scales: {
          x: { time: true },
          y: { range: (_u, _min, max) => [0, Math.max(10, max * 1.1)] },
        },
        axes: [{}, { label: 'ms, commit → every affected agent applied', size: 60 }],
        series: [
          {},
          { label: 'p50', stroke: '#1565c0', width: 2, spanGaps: false, points: { show: true } },
          { label: 'p99', stroke: '#c62828', width: 2, spanGaps: false, points: { show: true } },
        ],
      },
      series(store.converged, Date.now()),
      box.current!,
    );
    plot.current = p;
    const t = setInterval(() => p.setData(series(store.converged, Date.now())), 5000);
    return () => {
      clearInterval(t);
      p.destroy();
    };
  }, [store]);
  useEffect(() => {
    plot.current?.setData(series(store.converged, Date.now()));
  }, [store.converged.length, store.lastUpdate]);
  const sorted = store.converged.map((s) => s.ms).sort((a, b) => a - b);
  const recent = store.converged.slice(-12).reverse();
  return (
    <div>
      <p data-testid="convergence-summary">
        {sorted.length
          ? `${sorted.length} revisions converged in the last 15 minutes: p50 ${quantile(sorted, 0.5)} ms, p99 ${quantile(sorted, 0.99)} ms, max ${sorted[sorted.length - 1]} ms`
          : store.link === 'live'
            ? 'No revision has converged since this page opened.'
            : 'Convergence times come from the event stream, which is not connected (the page is polling).'}
      </p>
      <div ref={box} class="chart" data-testid="convergence" />
      {recent.length > 0 && (
        <table class="grid narrow">
          <thead>
            <tr>
              <th class="num">revision</th>
              <th class="num">ms</th>
              <th>at</th>
            </tr>
          </thead>
          <tbody>
            {recent.map((s) => (
              <tr>
                <td class="num">{s.revision}</td>
                <td class="num">{s.ms}</td>
                <td>{new Date(s.at).toLocaleTimeString()}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
