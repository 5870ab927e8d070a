// The layout (header, navigation) and which view a route shows, for whom.

import { useEffect, useState } from 'preact/hooks';
import { route, navigate } from './state/router.js';
import { session, logout, allowed, health } from './state/session.js';
import { setLive, liveStatus } from './state/live.js';
import { toasts, dismiss } from './state/toasts.js';
import { hrefs } from './lib/routes.js';
import { can, seesAll, homeOf } from './lib/roles.js';
import { Loading, Empty } from './components/ui.jsx';
import { Login } from './views/Login.jsx';
import { Overview } from './views/Overview.jsx';
import { Functions } from './views/Functions.jsx';
import { FunctionForm } from './views/FunctionForm.jsx';
import { FunctionDetail } from './views/FunctionDetail.jsx';
import { Sandboxes } from './views/Sandboxes.jsx';
import { Keys } from './views/Keys.jsx';
import { Audit } from './views/Audit.jsx';
import { Invoke } from './views/Invoke.jsx';

/** Each view and the action its role must allow. */
const VIEWS = {
  overview: { view: Overview, needs: 'read_metrics' },
  functions: { view: Functions, needs: 'read_functions' },
  create: { view: FunctionForm, needs: 'write_functions' },
  edit: { view: FunctionForm, needs: 'write_functions' },
  function: { view: FunctionDetail, needs: 'read_functions' },
  sandboxes: { view: Sandboxes, needs: 'read_system' },
  keys: { view: Keys, needs: 'manage_keys' },
  audit: { view: Audit, needs: 'read_audit' },
  invoke: { view: Invoke, needs: 'invoke' },
};

const NAV = [
  { name: 'overview', label: 'Overview', href: hrefs.overview(), needs: 'read_metrics' },
  { name: 'functions', label: 'Functions', href: hrefs.functions(), needs: 'read_functions', also: ['create', 'edit', 'function'] },
  { name: 'sandboxes', label: 'Sandboxes', href: hrefs.sandboxes(), needs: 'read_system' },
  { name: 'keys', label: 'Keys', href: hrefs.keys(), needs: 'manage_keys' },
  { name: 'audit', label: 'Audit', href: hrefs.audit(), needs: 'read_audit' },
  { name: 'invoke', label: 'Invoke', href: hrefs.invoke(), needs: 'invoke', onlyWithout: 'read_functions' },
];

export function App() {
  const who = session.value;
  const r = route.value;

  useEffect(() => {
    setLive(can(who, 'read_metrics'), seesAll(who));
  }, [who]);

  useEffect(() => {
    if (who === null && r.name !== 'login') {
      const next = location.pathname + location.search;
      navigate(hrefs.login(next), { replace: true });
    } else if (who && r.name === 'login') {
      const next = r.query.next;
      navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : homeOf(who), { replace: true });
    } else if (who && r.name === 'overview' && !can(who, 'read_metrics')) {
      navigate(homeOf(who), { replace: true });
    }
  }, [who, r]);

  if (who === undefined) return <Loading what="Connecting to the ignis server" />;
  if (who === null || r.name === 'login') return <Login />;

  const entry = VIEWS[r.name];
  let body;
  if (!entry) {
    body = (
      <Empty title="No such page" testid="not-found">
        <a href={homeOf(who)}>Go to the start page</a>
      </Empty>
    );
  } else if (!allowed(entry.needs)) {
    body = (
      <Empty title="Your key cannot use this page" testid="forbidden">
        <p>
          The role <strong>{who.role}</strong> does not allow it. <a href={homeOf(who)}>Go to the start page</a>
        </p>
      </Empty>
    );
  } else {
    const View = entry.view;
    body = <View route={r} key={r.name === 'function' ? `${r.params.namespace}/${r.params.name}` : r.name} />;
  }
  return (
    <div class="shell">
      <Header who={who} active={r.name} />
      <main id="main" class="main" tabIndex={-1}>
        {body}
      </main>
      <Toasts />
    </div>
  );
}

function Header({ who, active }) {
  const [open, setOpen] = useState(false);
  useEffect(() => setOpen(false), [active, route.value.path]);
  const items = NAV.filter((n) => allowed(n.needs) && !(n.onlyWithout && allowed(n.onlyWithout)));
  const status = liveStatus.value;
  const h = health.value;
  return (
    <header class="header">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <a class="brand" href={homeOf(who)} aria-label="ignis console, start page">
        <svg viewBox="0 0 32 32" width="22" height="22" aria-hidden="true">
          <path fill="var(--accent)" d="M16 2c2 6 9 9 9 17a9 9 0 0 1-18 0c0-5 3-8 5-10 0 3 1 5 3 6-1-5 0-9 1-13z" />
        </svg>
        <span>ignis</span>
      </a>
      <button
        type="button"
        class="menu-button btn small"
        aria-expanded={open ? 'true' : 'false'}
        aria-controls="nav"
        onClick={() => setOpen(!open)}
        data-testid="menu-button"
      >
        Menu
      </button>
      <nav id="nav" class={`nav${open ? ' open' : ''}`} aria-label="Main">
        {items.map((n) => (
          <a
            href={n.href}
            key={n.name}
            class={n.name === active || n.also?.includes(active) ? 'active' : ''}
            aria-current={n.name === active ? 'page' : undefined}
            data-testid={`nav-${n.name}`}
          >
            {n.label}
          </a>
        ))}
      </nav>
      <div class="header-right">
        {allowed('read_metrics') && (
          <span class={`live-dot live-${status}`} title={`Live stream: ${status}`} data-testid="live-status">
            {status === 'live' ? 'live' : status === 'off' ? 'paused' : status}
          </span>
        )}
        <span class="who" title={`${who.key_name} (${who.key_id})${h ? ` · ignis ${h.version}` : ''}`} data-testid="who">
          <span class="who-name">{who.key_name}</span>
          <span class={`badge badge-role role-${who.role}`} data-testid="role">
            {who.role}
          </span>
          {who.namespaces !== '*' && <span class="muted ns-list">{who.namespaces.join(', ')}</span>}
        </span>
        <button type="button" class="btn small" onClick={() => logout().then(() => navigate('/login'))} data-testid="logout">
          Log out
        </button>
      </div>
    </header>
  );
}

function Toasts() {
  return (
    <div class="toasts" aria-live="polite" data-testid="toasts">
      {toasts.value.map((t) => (
        <div class={`toast toast-${t.kind}`} key={t.id} role="status">
          <span>{t.text}</span>
          <button type="button" class="btn ghost small" onClick={() => dismiss(t.id)} aria-label="Dismiss">
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
