import cytoscape from 'cytoscape';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Host } from '../api';
import type { Store } from '../store';
import { useStore } from './common';
import { hostState } from './fleet';
import { segment } from './networks';

/** At most this many host groups: hosts are cut, in name order, into this many ranges. */
const HOST_GROUPS = 24;
/** Networks drawn in the overview (the largest first); a filter narrows them. */
const MAX_NETWORKS = 150;
/** Hosts drawn around an expanded network (the most populated first). */
const MAX_HOSTS = 60;

const COLOURS = {
  'in-sync': '#2e7d32',
  errors: '#ef6c00',
  behind: '#f9a825',
  disconnected: '#c62828',
};
type State = keyof typeof COLOURS;
const worst = (states: State[]): State =>
  (['disconnected', 'behind', 'errors', 'in-sync'] as State[]).find((s) => states.includes(s)) ??
  'in-sync';

function overview(store: Store, filter: string): cytoscape.ElementDefinition[] {
  const els: cytoscape.ElementDefinition[] = [];
  const hosts = [...store.hosts].sort((a, b) => (a.name < b.name ? -1 : 1));
  const size = Math.max(1, Math.ceil(hosts.length / HOST_GROUPS));
  const groupOf = new Map<string, number>();
  const groups: Host[][] = [];
  hosts.forEach((h, i) => {
    const g = Math.floor(i / size);
    (groups[g] ??= []).push(h);
    groupOf.set(h.name, g);
  });
  const needle = filter.trim().toLowerCase();
  const perNet = store.agg?.perNetwork;
  const nets = store.networks
    .filter((n) => !needle || n.name.toLowerCase().includes(needle))
    .sort((a, b) => (perNet?.get(b.name) ?? 0) - (perNet?.get(a.name) ?? 0))
    .slice(0, MAX_NETWORKS);
  const shown = new Set(nets.map((n) => n.name));
  const routers = store.routers.filter((r) => !needle || r.networks.some((n) => shown.has(n)));
  const cols = Math.max(1, Math.min(nets.length, 12));
  const width = Math.max(cols, groups.length, routers.length, 1) * 110;
  const row = (i: number, n: number, y: number) => ({ x: ((i + 0.5) * width) / n, y });
  routers.forEach((r, i) =>
    els.push({
      data: { id: `r:${r.name}`, label: r.name, kind: 'router' },
      position: row(i, routers.length, 0),
    }),
  );
  const netRows = Math.ceil(nets.length / cols);
  nets.forEach((n, i) => {
    const count = perNet?.get(n.name) ?? 0;
    els.push({
      data: {
        id: `n:${n.name}`,
        network: n.name,
        label: `${n.name}\n${n.model} · ${segment(n)}\n${count} inst`,
        kind: 'network',
        weight: Math.min(80, 30 + Math.log10(count + 1) * 12),
      },
      position: row(
        i % cols,
        Math.min(cols, nets.length - Math.floor(i / cols) * cols),
        160 + Math.floor(i / cols) * 110,
      ),
    });
  });
  const hostY = 160 + netRows * 110 + 80;
  groups.forEach((g, i) => {
    const state = worst(g.map(hostState));
    const bad = g.filter((h) => hostState(h) !== 'in-sync').length;
    els.push({
      data: {
        id: `g:${i}`,
        label:
          g.length === 1
            ? g[0].name
            : `${g[0].name} … ${g[g.length - 1].name}\n${g.length} hosts${bad ? ` · ${bad} not in sync` : ''}`,
        kind: 'hosts',
        colour: COLOURS[state],
      },
      position: row(i, groups.length, hostY),
    });
  });
  for (const r of routers)
    for (const n of r.networks)
      if (shown.has(n))
        els.push({
          data: {
            id: `e:r:${r.name}:${n}`,
            source: `r:${r.name}`,
            target: `n:${n}`,
            kind: 'attach',
          },
        });
  for (const n of nets) {
    const perGroup = new Map<number, number>();
    for (const [h, c] of store.agg?.spans.get(n.name) ?? []) {
      const g = groupOf.get(h);
      if (g !== undefined) perGroup.set(g, (perGroup.get(g) ?? 0) + c);
    }
    for (const [g, c] of perGroup)
      els.push({
        data: {
          id: `e:${n.name}:${g}`,
          source: `n:${n.name}`,
          target: `g:${g}`,
          kind: 'span',
          width: Math.min(8, 1 + Math.log10(c + 1) * 2),
        },
      });
  }
  return els;
}

function expanded(store: Store, network: string): cytoscape.ElementDefinition[] {
  const net = store.networks.find((n) => n.name === network);
  if (!net) return [];
  const els: cytoscape.ElementDefinition[] = [];
  const count = store.agg?.perNetwork.get(network) ?? 0;
  els.push({
    data: {
      id: `n:${network}`,
      network,
      label: `${network}\n${net.model} · ${segment(net)}\n${net.cidr}\n${count} instances`,
      kind: 'network',
      weight: 80,
    },
    position: { x: 0, y: 0 },
  });
  const byName = new Map(store.hosts.map((h) => [h.name, h]));
  const spans = [...(store.agg?.spans.get(network) ?? [])].sort((a, b) => b[1] - a[1]);
  const shown = spans.slice(0, MAX_HOSTS);
  const rest = spans.slice(MAX_HOSTS);
  const ring = shown.length + (rest.length ? 1 : 0);
  const radius = Math.max(220, ring * 22);
  const at = (i: number) => ({
    x: radius * Math.cos((2 * Math.PI * i) / Math.max(1, ring) - Math.PI / 2),
    y: radius * Math.sin((2 * Math.PI * i) / Math.max(1, ring) - Math.PI / 2),
  });
  shown.forEach(([h, c], i) => {
    const host = byName.get(h);
    els.push({
      data: {
        id: `h:${h}`,
        label: `${h}\n${c} inst`,
        kind: 'hosts',
        colour: COLOURS[host ? hostState(host) : 'disconnected'],
      },
      position: at(i),
    });
    els.push({
      data: {
        id: `e:${h}`,
        source: `n:${network}`,
        target: `h:${h}`,
        kind: 'span',
        width: Math.min(8, 1 + Math.log10(c + 1) * 2),
      },
    });
  });
  if (rest.length) {
    const c = rest.reduce((s, [, n]) => s + n, 0);
    els.push({
      data: {
        id: 'h:*',
        label: `${rest.length} more hosts\n${c} inst`,
        kind: 'hosts',
        colour: '#78909c',
      },
      position: at(shown.length),
    });
    els.push({
      data: { id: 'e:*', source: `n:${network}`, target: 'h:*', kind: 'span', width: 2 },
    });
  }
  store.routers
    .filter((r) => r.networks.includes(network))
    .forEach((r, i, all) => {
      els.push({
        data: {
          id: `r:${r.name}`,
          label: `${r.name}\n${r.networks.length} networks`,
          kind: 'router',
        },
        position: { x: -radius - 200, y: (i - (all.length - 1) / 2) * 90 },
      });
      els.push({
        data: {
          id: `e:r:${r.name}`,
          source: `r:${r.name}`,
          target: `n:${network}`,
          kind: 'attach',
        },
      });
    });
  return els;
}

const STYLE: cytoscape.StylesheetJson = [
  {
    selector: 'node',
    style: {
      label: 'data(label)',
      'text-wrap': 'wrap',
      'font-size': 10,
      'text-valign': 'bottom',
      'text-margin-y': 4,
      color: '#263238',
    },
  },
  {
    selector: 'node[kind="network"]',
    style: {
      shape: 'round-rectangle',
      'background-color': '#1565c0',
      width: 'data(weight)',
      height: 'data(weight)',
    },
  },
  {
    selector: 'node[kind="router"]',
    style: { shape: 'diamond', 'background-color': '#6a1b9a', width: 34, height: 34 },
  },
  {
    selector: 'node[kind="hosts"]',
    style: { shape: 'ellipse', 'background-color': 'data(colour)', width: 26, height: 26 },
  },
  {
    selector: 'edge',
    style: { 'curve-style': 'straight', 'line-color': '#b0bec5', width: 1, opacity: 0.8 },
  },
  { selector: 'edge[kind="span"]', style: { width: 'data(width)' } },
  {
    selector: 'edge[kind="attach"]',
    style: { 'line-color': '#8e24aa', 'line-style': 'dashed', width: 2 },
  },
];

/**
 * The topology, aggregated so it stays readable at fleet size: routers and networks are
 * nodes, hosts are grouped into at most HOST_GROUPS ranges (coloured by their worst state),
 * instances are counted on the edges. Clicking a network expands it: the hosts it spans
 * (the most populated first) with their instance counts, and its routers.
 */
export function TopologyView({ store }: { store: Store }) {
  useStore(store);
  const box = useRef<HTMLDivElement>(null);
  const cy = useRef<cytoscape.Core>();
  const [focus, setFocus] = useState<string | null>(null);
  const [filter, setFilter] = useState('');
  const lastDraw = useRef(0);

  useEffect(() => {
    const c = cytoscape({
      container: box.current!,
      style: STYLE,
      layout: { name: 'preset' },
      wheelSensitivity: 0.3,
      minZoom: 0.05,
      maxZoom: 4,
      textureOnViewport: true,
      hideEdgesOnViewport: true,
    });
    c.on('tap', 'node[kind="network"]', (e: cytoscape.EventObject) =>
      setFocus((e.target as cytoscape.NodeSingular).data('network') as string),
    );
    cy.current = c;
    store.wantSpans(true);
    return () => {
      store.wantSpans(false);
      c.destroy();
    };
  }, []);

  const draw = () => {
    const c = cy.current;
    if (!c) return;
    lastDraw.current = Date.now();
    const els = focus ? expanded(store, focus) : overview(store, filter);
    c.batch(() => {
      c.elements().remove();
      c.add(els);
    });
    c.fit(undefined, 30);
  };
  useEffect(draw, [focus, filter]);
  // Live: redraw on changes, at most every two seconds.
  useEffect(() => {
    const wait = Math.max(0, 2000 - (Date.now() - lastDraw.current));
    const t = setTimeout(draw, wait);
    return () => clearTimeout(t);
  }, [store.lastUpdate]);

  return (
    <div class="topology">
      <div class="toolbar">
        <select
          name="expand"
          value={focus ?? ''}
          onChange={(e) => setFocus(e.currentTarget.value || null)}
        >
          <option value="">overview</option>
          {store.networks.map((n) => (
            <option value={n.name}>expand {n.name}</option>
          ))}
        </select>
        {focus ? (
          <button onClick={() => setFocus(null)} data-action="overview">
            ‹ Overview
          </button>
        ) : (
          <input
            type="search"
            placeholder="filter networks"
            value={filter}
            onInput={(e) => setFilter(e.currentTarget.value)}
          />
        )}
        <span class="muted">
          {focus
            ? `network ${focus}: the hosts it spans (up to ${MAX_HOSTS}) and its routers`
            : `${Math.min(store.networks.length, MAX_NETWORKS)} of ${store.networks.length} networks, ${store.hosts.length} hosts in ${Math.min(HOST_GROUPS, store.hosts.length)} groups; click a network to expand it`}
        </span>
        <span class="legend">
          <i style={{ background: COLOURS['in-sync'] }} /> in sync{' '}
          <i style={{ background: COLOURS.behind }} /> out of sync{' '}
          <i style={{ background: COLOURS.disconnected }} /> disconnected <i class="sq" /> network{' '}
          <i class="dia" /> router
        </span>
      </div>
      <div ref={box} class="cy" data-testid="topology" />
    </div>
  );
}
