import { useState } from 'preact/hooks';
import { api, type Page, query } from '../lib/api.js';
import { when } from '../lib/format.js';
import { useCursorStack, useLoad, useSubmit } from '../lib/hooks.js';
import { href } from '../lib/router.js';
import { can, type Me } from '../lib/session.js';
import { ROLES, WEBHOOK_EVENTS } from '../lib/vocabulary.js';
import { ConfirmButton, CopyButton, Empty, ErrorBanner, Notice, Pager, StatusBadge } from '../components/ui.js';
import { TenantsPanel } from '../components/tenants-panel.js';

const TABS = [
  { id: 'tokens', name: 'Tokens', needs: 'admin' },
  { id: 'webhooks', name: 'Webhooks', needs: 'admin' },
  { id: 'audit', name: 'Audit log', needs: 'admin' },
  { id: 'tenants', name: 'Tenants', needs: 'platform' },
] as const;

export function SettingsPage({ me, tab }: { me: Me; tab?: string }) {
  const tabs = TABS.filter((t) => can(me, t.needs));
  const current = tabs.find((t) => t.id === tab) ?? tabs[0];
  return (
    <section aria-labelledby="settings-title">
      <div class="page-head">
        <h1 id="settings-title">Settings</h1>
      </div>
      <p>
        Signed in as <strong>{me.name}</strong> ({me.role}
        {me.tenant ? ` in ${me.tenant}` : ', every tenant'}).
      </p>
      {!current ? (
        <Notice>Tokens, webhooks and the audit log need the admin role.</Notice>
      ) : (
        <>
          <nav class="tabs" aria-label="Settings">
            {tabs.map((t) => (
              <a key={t.id} href={href(['settings', t.id])} aria-current={t.id === current.id ? 'page' : undefined}>
                {t.name}
              </a>
            ))}
          </nav>
          {current.id === 'tokens' && <TokensPanel me={me} />}
          {current.id === 'webhooks' && <WebhooksPanel me={me} />}
          {current.id === 'audit' && <AuditPanel />}
          {current.id === 'tenants' && <TenantsPanel />}
        </>
      )}
    </section>
  );
}

interface Token {
  id: string;
  name: string;
  role: string;
  tenant?: string;
  prefix: string;
  createdBy: string;
  createdAt: string;
  expiresAt?: string;
  revokedAt?: string;
}

function TokensPanel({ me }: { me: Me }) {
  const list = useLoad((signal) => api<{ items: Token[] }>('GET', 'v1/tokens', { signal }), []);
  const [name, setName] = useState('');
  const [role, setRole] = useState('viewer');
  const [tenant, setTenant] = useState('');
  const [days, setDays] = useState('');
  const [created, setCreated] = useState<Token & { token: string }>();
  const roles = ROLES.filter((r) => r !== 'platform' || me.role === 'platform');
  const create = useSubmit(async () => {
    const body = {
      name,
      role,
      ...(tenant && role !== 'platform' ? { tenant } : {}),
      ...(days ? { expiresInDays: Number(days) } : {}),
    };
    setCreated(await api<Token & { token: string }>('POST', 'v1/tokens', { body }));
    setName('');
    list.reload();
  });
  return (
    <>
      <h2>New token</h2>
      <form class="inline-form" onSubmit={create.submit}>
        <label class="field">
          <span>Name</span>
          <input value={name} required maxLength={100} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </label>
        <label class="field">
          <span>Role</span>
          <select value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value)}>
            {roles.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </label>
        {me.role === 'platform' && role !== 'platform' && (
          <label class="field">
            <span>Tenant</span>
            <input value={tenant} placeholder="default" onInput={(e) => setTenant((e.target as HTMLInputElement).value)} />
          </label>
        )}
        <label class="field">
          <span>Expires in (days)</span>
          <input
            type="number"
            min={1}
            max={3650}
            value={days}
            placeholder="never"
            onInput={(e) => setDays((e.target as HTMLInputElement).value)}
          />
        </label>
        <button type="submit" class="primary" disabled={create.busy}>
          Create token
        </button>
      </form>
      <ErrorBanner error={create.error} />
      {created && (
        <div class="banner good" role="status">
          <p>
            Token <strong>{created.name}</strong> ({created.role}): copy it now, it is not shown again.
          </p>
          <p>
            <code class="secret-once">{created.token}</code> <CopyButton text={created.token} label="the new token" />
          </p>
        </div>
      )}
      <h2>Tokens</h2>
      <ErrorBanner error={list.error} />
      <div class="table-wrap">
        <table class="compact">
          <caption class="sr-only">Tokens</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Role</th>
              <th scope="col">Tenant</th>
              <th scope="col">Starts with</th>
              <th scope="col">Created</th>
              <th scope="col">Expires</th>
              <th scope="col">Revoke</th>
            </tr>
          </thead>
          <tbody>
            {(list.data?.items ?? []).map((t) => (
              <tr key={t.id}>
                <td>{t.name}</td>
                <td>{t.role}</td>
                <td>{t.tenant ?? '—'}</td>
                <td class="mono">{t.prefix}…</td>
                <td>
                  {when(t.createdAt)} by {t.createdBy}
                </td>
                <td>{t.expiresAt ? when(t.expiresAt) : 'never'}</td>
                <td>
                  {t.revokedAt ? (
                    <span class="muted">revoked {when(t.revokedAt)}</span>
                  ) : (
                    <ConfirmButton
                      label={`Revoke ${t.name}`}
                      title={`Revoke the token ${t.name}?`}
                      danger
                      confirmLabel="Revoke"
                      body={<p>Every call with it is refused from now on, and its open streams close within seconds.</p>}
                      disabledReason={t.id === me.id ? 'This is the token you are signed in with.' : undefined}
                      onConfirm={async () => {
                        await api('DELETE', `v1/tokens/${encodeURIComponent(t.id)}`);
                        list.reload();
                      }}
                    />
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

interface Webhook {
  id: string;
  tenant: string;
  url: string;
  description: string;
  events: string[];
  active: boolean;
  createdAt: string;
}

interface Delivery {
  id: string;
  event: string;
  status: string;
  attempts: { at: string; statusCode?: number; error?: string; durationMs: number }[];
  redeliveries: number;
  createdAt: string;
}

function WebhooksPanel({ me }: { me: Me }) {
  const list = useLoad((signal) => api<Page<Webhook>>('GET', 'v1/webhooks', { signal }), []);
  const [open, setOpen] = useState<string>();
  const [url, setUrl] = useState('');
  const [events, setEvents] = useState<string[]>(['update_failed']);
  const [tenant, setTenant] = useState('');
  const [secret, setSecret] = useState<string>();
  const create = useSubmit(async () => {
    const created = await api<Webhook & { secret: string }>('POST', 'v1/webhooks', {
      body: { url, events, ...(tenant ? { tenant } : {}) },
    });
    setSecret(created.secret);
    setUrl('');
    list.reload();
  });
  return (
    <>
      <h2>New webhook</h2>
      <form class="stack-form" onSubmit={create.submit}>
        <label class="field">
          <span>URL</span>
          <input type="url" required value={url} placeholder="https://…" onInput={(e) => setUrl((e.target as HTMLInputElement).value)} />
        </label>
        {me.role === 'platform' && (
          <label class="field">
            <span>Tenant</span>
            <input value={tenant} placeholder="default" onInput={(e) => setTenant((e.target as HTMLInputElement).value)} />
          </label>
        )}
        <fieldset class="group checks">
          <legend>Events</legend>
          {WEBHOOK_EVENTS.map((name) => (
            <label key={name} class="check">
              <input
                type="checkbox"
                checked={events.includes(name)}
                onChange={(e) => setEvents((e.target as HTMLInputElement).checked ? [...events, name] : events.filter((x) => x !== name))}
              />{' '}
              {name.replace(/_/g, ' ')}
            </label>
          ))}
        </fieldset>
        <button type="submit" class="primary" disabled={create.busy}>
          Add webhook
        </button>
      </form>
      <ErrorBanner error={create.error} />
      {secret && (
        <div class="banner good" role="status">
          Its signing secret, shown once: <code class="secret-once">{secret}</code> <CopyButton text={secret} label="the signing secret" />
        </div>
      )}
      <h2>Webhooks</h2>
      <ErrorBanner error={list.error} />
      {list.data?.items.length === 0 && <Empty>No webhooks.</Empty>}
      {(list.data?.items ?? []).map((hook) => (
        <div key={hook.id} class="panel">
          <div class="page-head">
            <h3 class="mono">{hook.url}</h3>
            <StatusBadge status={hook.active ? 'active' : 'paused'} />
            <button
              type="button"
              class="ghost small"
              aria-expanded={open === hook.id}
              onClick={() => setOpen(open === hook.id ? undefined : hook.id)}
            >
              {open === hook.id ? 'Hide deliveries' : 'Deliveries'}
            </button>
          </div>
          <p class="muted small">{hook.events.join(', ')}</p>
          {open === hook.id && <Deliveries hook={hook} />}
        </div>
      ))}
    </>
  );
}

function Deliveries({ hook }: { hook: Webhook }) {
  const pages = useCursorStack();
  const list = useLoad(
    (signal) =>
      api<Page<Delivery>>('GET', `v1/webhooks/${encodeURIComponent(hook.id)}/deliveries${query({ cursor: pages.cursor, limit: 20 })}`, {
        signal,
      }),
    [hook.id, pages.cursor],
    5_000,
  );
  const [error, setError] = useState<string>();
  return (
    <>
      <ErrorBanner error={list.error ?? error} />
      <table class="compact">
        <caption class="sr-only">Deliveries of {hook.url}</caption>
        <thead>
          <tr>
            <th scope="col">Event</th>
            <th scope="col">Status</th>
            <th scope="col">Last try</th>
            <th scope="col">Tries</th>
            <th scope="col">Redeliver</th>
          </tr>
        </thead>
        <tbody>
          {(list.data?.items ?? []).map((d) => {
            const last = d.attempts.at(-1);
            return (
              <tr key={d.id}>
                <td>{d.event}</td>
                <td>
                  <StatusBadge status={d.status} />
                </td>
                <td>{last ? `${when(last.at)}: ${last.statusCode ?? last.error ?? ''} (${Math.round(last.durationMs)} ms)` : '—'}</td>
                <td>{d.attempts.length}</td>
                <td>
                  <button
                    type="button"
                    class="small"
                    disabled={d.status === 'pending'}
                    title={d.status === 'pending' ? 'It is still being tried.' : undefined}
                    onClick={() =>
                      void api('POST', `v1/webhooks/${encodeURIComponent(hook.id)}/deliveries/${encodeURIComponent(d.id)}/redeliver`, {
                        body: {},
                      })
                        .then(list.reload)
                        .catch((err: Error) => setError(err.message))
                    }
                  >
                    Redeliver
                  </button>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <Pager
        hasNewer={pages.depth > 0}
        hasOlder={Boolean(list.data?.nextCursor)}
        newer={pages.newer}
        older={() => pages.older(list.data?.nextCursor)}
      />
    </>
  );
}

interface AuditEntry {
  id: string;
  at: string;
  tenant?: string;
  actor: { name: string; role: string };
  action: string;
  targetId?: string;
  outcome: string;
  statusCode: number;
}

function AuditPanel() {
  const pages = useCursorStack();
  const list = useLoad(
    (signal) => api<Page<AuditEntry>>('GET', `v1/audit${query({ cursor: pages.cursor, limit: 50 })}`, { signal }),
    [pages.cursor],
  );
  return (
    <>
      <h2>Audit log</h2>
      <ErrorBanner error={list.error} />
      <div class="table-wrap">
        <table class="compact">
          <caption class="sr-only">Audit log, newest first</caption>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Who</th>
              <th scope="col">Action</th>
              <th scope="col">Target</th>
              <th scope="col">Tenant</th>
              <th scope="col">Outcome</th>
            </tr>
          </thead>
          <tbody>
            {(list.data?.items ?? []).map((e) => (
              <tr key={e.id}>
                <td>{when(e.at)}</td>
                <td>
                  {e.actor.name} <span class="muted">({e.actor.role})</span>
                </td>
                <td class="mono">{e.action}</td>
                <td class="mono">{e.targetId ?? '—'}</td>
                <td>{e.tenant ?? '—'}</td>
                <td>
                  <StatusBadge status={e.outcome === 'success' ? 'succeeded' : 'failed'} /> {e.statusCode}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <Pager
        hasNewer={pages.depth > 0}
        hasOlder={Boolean(list.data?.nextCursor)}
        newer={pages.newer}
        older={() => pages.older(list.data?.nextCursor)}
      />
    </>
  );
}
