import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { Api, ApiError } from './api';
import { Store } from './store';
import { useStore } from './views/common';
import { FleetView } from './views/fleet';
import { NetworksView, PoolsView, RoutersView } from './views/networks';
import { InstancesView } from './views/instances';
import { TopologyView } from './views/topology';
import { ConvergenceView } from './views/convergence';
import { TraceView } from './views/trace';
import './style.css';

const TOKEN_KEY = 'lattice.token';

export type Role = 'admin' | 'viewer';

const VIEWS = {
  fleet: 'Fleet',
  networks: 'Networks',
  instances: 'Instances',
  routers: 'Routers',
  pools: 'Pools',
  topology: 'Topology',
  convergence: 'Convergence',
  trace: 'Trace',
} as const;
type ViewId = keyof typeof VIEWS;

const viewFromHash = (): ViewId => {
  const v = location.hash.replace(/^#\/?/, '');
  return v in VIEWS ? (v as ViewId) : 'fleet';
};

function SignIn({ onSignedIn }: { onSignedIn: (api: Api, role: Role) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    const api = new Api(token.trim());
    try {
      const role = await api.role();
      sessionStorage.setItem(TOKEN_KEY, api.token);
      onSignedIn(api, role);
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401
          ? 'This token is not valid.'
          : `Cannot sign in: ${err instanceof Error ? err.message : String(err)}`,
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <h1>Lattice</h1>
      <p class="sub">Operations dashboard</p>
      <form onSubmit={(e) => void submit(e)} method="post" action="#">
        <label>
          API token (admin or viewer)
          <input
            type="password"
            name="token"
            autocomplete="current-password"
            value={token}
            onInput={(e) => setToken(e.currentTarget.value)}
            required
            autofocus
          />
        </label>
        <button type="submit" disabled={busy || !token.trim()}>
          Sign in
        </button>
        {error && <p class="error">{error}</p>}
      </form>
      <p class="hint">The token stays in this tab's session storage, never in an address.</p>
    </main>
  );
}

function Dashboard({ api, role, onSignOut }: { api: Api; role: Role; onSignOut: () => void }) {
  const store = useMemo(() => new Store(api), [api]);
  const [view, setView] = useState<ViewId>(viewFromHash());
  const [loadError, setLoadError] = useState('');
  useStore(store);
  useEffect(() => {
    store.start().catch((e: unknown) => setLoadError(e instanceof Error ? e.message : String(e)));
    const onHash = () => setView(viewFromHash());
    addEventListener('hashchange', onHash);
    return () => {
      store.stop();
      removeEventListener('hashchange', onHash);
    };
  }, [store]);
  const c = store.counts;
  const connected = store.hosts.filter((h) => h.agent.connected).length;
  const inSync = store.hosts.filter((h) => h.inSync).length;
  return (
    <div class="app">
      <header class="top">
        <h1>Lattice</h1>
        <nav>
          {(Object.keys(VIEWS) as ViewId[]).map((v) => (
            <a href={`#${v}`} class={v === view ? 'active' : ''} data-view={v}>
              {VIEWS[v]}
            </a>
          ))}
        </nav>
        <div class="status">
          <span class={`link ${store.link}`} data-testid="link" title="event stream">
            {store.link === 'live'
              ? '● live'
              : store.link === 'polling'
                ? '● polling'
                : '○ connecting'}
          </span>
          <span class="role" data-testid="role">
            {role === 'viewer' ? 'viewer (read-only)' : 'admin'}
          </span>
          <button class="link-button" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <section class="counts" data-testid="counts">
        <div>
          <b>{c.hosts ?? '–'}</b> hosts
        </div>
        <div>
          <b>{connected}</b> connected
        </div>
        <div class={inSync < store.hosts.length ? 'warn' : ''}>
          <b>{inSync}</b> in sync
        </div>
        <div>
          <b>{c.networks ?? '–'}</b> networks
        </div>
        <div>
          <b>{c.instances ?? '–'}</b> instances
        </div>
        <div>
          <b>{c.routers ?? '–'}</b> routers
        </div>
        <div>
          revision <b data-testid="revision">{store.revision}</b>
        </div>
      </section>
      {(loadError || store.error) && <p class="error banner">{loadError || store.error}</p>}
      <main class="view" data-testid={`view-${view}`}>
        {view === 'fleet' && <FleetView store={store} />}
        {view === 'networks' && <NetworksView store={store} />}
        {view === 'instances' && <InstancesView store={store} role={role} />}
        {view === 'routers' && <RoutersView store={store} />}
        {view === 'pools' && <PoolsView store={store} />}
        {view === 'topology' && <TopologyView store={store} />}
        {view === 'convergence' && <ConvergenceView store={store} />}
        {view === 'trace' && <TraceView store={store} />}
      </main>
    </div>
  );
}

function App() {
  const [session, setSession] = useState<{ api: Api; role: Role } | undefined>();
  const [checking, setChecking] = useState(() => sessionStorage.getItem(TOKEN_KEY) !== null);
  useEffect(() => {
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (!saved) return;
    const api = new Api(saved);
    api
      .role()
      .then((role) => setSession({ api, role }))
      .catch(() => sessionStorage.removeItem(TOKEN_KEY))
      .finally(() => setChecking(false));
  }, []);
  useEffect(() => {
    const links = document.getElementById('links');
    if (links) links.hidden = session !== undefined;
  }, [session]);
  if (checking) return <p class="sub">Signing in…</p>;
  if (!session) return <SignIn onSignedIn={(api, role) => setSession({ api, role })} />;
  return (
    <Dashboard
      api={session.api}
      role={session.role}
      onSignOut={() => {
        sessionStorage.removeItem(TOKEN_KEY);
        setSession(undefined);
      }}
    />
  );
}

const root = document.getElementById('app')!;
root.textContent = '';
render(<App />, root);
