import './styles.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, type ApiError } from './lib/api.js';
import { href, useRoute } from './lib/router.js';
import { type Me, session, signOut, token } from './lib/session.js';
import { useStore } from './lib/store.js';
import { SignIn } from './pages/sign-in.js';
import { JobsPage } from './pages/jobs.js';
import { JobPage } from './pages/job.js';
import { ResourcesPage } from './pages/resources.js';
import { ResourcePage } from './pages/resource.js';
import { TemplatesPage } from './pages/templates.js';
import { TemplatePage } from './pages/template.js';
import { SettingsPage } from './pages/settings.js';
import { EditorPage } from './pages/editor-page.js';

const SECTIONS = [
  { path: 'jobs', name: 'Jobs' },
  { path: 'resources', name: 'Resources' },
  { path: 'templates', name: 'Templates' },
  { path: 'settings', name: 'Settings' },
] as const;

function Page({ me }: { me: Me }) {
  const route = useRoute();
  const [section = 'jobs', id, sub] = route.parts;
  useEffect(() => {
    document.getElementById('main')?.focus({ preventScroll: true });
  }, [section, id]);
  switch (section) {
    case 'jobs':
      return id ? <JobPage id={id} me={me} query={route.query} /> : <JobsPage me={me} query={route.query} />;
    case 'resources':
      return id ? <ResourcePage id={id} me={me} query={route.query} /> : <ResourcesPage query={route.query} />;
    case 'templates':
      if (id && sub === 'edit') return <EditorPage name={id} me={me} query={route.query} />;
      return id ? <TemplatePage name={id} me={me} query={route.query} /> : <TemplatesPage me={me} />;
    case 'settings':
      return <SettingsPage me={me} tab={id} />;
    default:
      return (
        <section>
          <h1>Not found</h1>
          <p>
            There is no page at this address. <a href={href(['jobs'])}>Go to the jobs</a>.
          </p>
        </section>
      );
  }
}

function Shell({ me }: { me: Me }) {
  const route = useRoute();
  const current = route.parts[0] ?? 'jobs';
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href={href(['jobs'])}>
          Deployments
        </a>
        <nav aria-label="Sections">
          {SECTIONS.map((s) => (
            <a key={s.path} href={href([s.path])} aria-current={current === s.path ? 'page' : undefined}>
              {s.name}
            </a>
          ))}
        </nav>
        <div class="who">
          <span title={`token ${me.id}`}>
            {me.name} · {me.role}
            {me.tenant ? ` · ${me.tenant}` : ' · all tenants'}
          </span>
          <button type="button" class="ghost small" onClick={() => signOut('You signed out.')}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Page me={me} />
      </main>
    </>
  );
}

function App() {
  const state = useStore(session);
  const [checking, setChecking] = useState(Boolean(token()) && !state.me);
  const [unreachable, setUnreachable] = useState<string>();
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    // A reload of the tab: the token is still in sessionStorage; ask who it is. A 401 signs out
    // (api() does); an outage keeps the token and offers to try again.
    if (!token() || state.me) return;
    setUnreachable(undefined);
    api<Me>('GET', 'v1/whoami')
      .then((me) => session.set({ me }))
      .catch((err: ApiError) => err.status !== 401 && setUnreachable(err.message))
      .finally(() => setChecking(false));
  }, [state.me, attempt]);
  if (unreachable && token())
    return (
      <main id="main" class="sign-in" tabIndex={-1}>
        <div class="panel">
          <h1>The service did not answer</h1>
          <p>{unreachable}</p>
          <button type="button" class="primary" onClick={() => setAttempt(attempt + 1)}>
            Try again
          </button>{' '}
          <button type="button" class="ghost" onClick={() => signOut('You signed out.')}>
            Sign out
          </button>
        </div>
      </main>
    );
  if (checking) return <p class="loading">Loading…</p>;
  return state.me ? <Shell me={state.me} /> : <SignIn reason={state.reason} />;
}

render(<App />, document.getElementById('app') as HTMLElement);
