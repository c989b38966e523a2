import { useEffect, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { when } from '../lib/format.js';
import { useLoad, useSubmit } from '../lib/hooks.js';
import { ErrorBanner, Notice } from './ui.js';

interface Tenant {
  name: string;
  displayName: string;
  description: string;
  createdAt: string;
}

/** Platform admins: every tenant, a new one, and each tenant's policy (docs/api.md, Governance). */
export function TenantsPanel() {
  const list = useLoad((signal) => api<{ items: Tenant[] }>('GET', 'v1/tenants', { signal }), []);
  const [name, setName] = useState('');
  const [open, setOpen] = useState<string>();
  const create = useSubmit(async () => {
    await api('POST', 'v1/tenants', { body: { name } });
    setName('');
    list.reload();
  });
  return (
    <>
      <h2>New tenant</h2>
      <form class="inline-form" onSubmit={create.submit}>
        <label class="field">
          <span>Name</span>
          <input
            value={name}
            required
            pattern="[a-z0-9]([a-z0-9\-]*[a-z0-9])?"
            onInput={(e) => setName((e.target as HTMLInputElement).value)}
          />
        </label>
        <button type="submit" class="primary">
          Create tenant
        </button>
      </form>
      <ErrorBanner error={create.error ?? list.error} />
      <h2>Tenants</h2>
      <ul class="plain">
        {(list.data?.items ?? []).map((t) => (
          <li key={t.name} class="panel">
            <div class="page-head">
              <h3>{t.displayName || t.name}</h3>
              <span class="muted small">
                {t.name} · since {when(t.createdAt)}
              </span>
              <button
                type="button"
                class="ghost small"
                aria-expanded={open === t.name}
                onClick={() => setOpen(open === t.name ? undefined : t.name)}
              >
                {open === t.name ? 'Close policy' : 'Policy'}
              </button>
            </div>
            {open === t.name && <PolicyEditor tenant={t.name} />}
          </li>
        ))}
      </ul>
    </>
  );
}

function PolicyEditor({ tenant }: { tenant: string }) {
  const policy = useLoad(
    (signal) => api<Record<string, unknown>>('GET', `v1/tenants/${encodeURIComponent(tenant)}/policy`, { signal }),
    [tenant],
  );
  const [text, setText] = useState('');
  const [saved, setSaved] = useState(false);
  useEffect(() => {
    if (policy.data) setText(JSON.stringify(policy.data, null, 2));
  }, [policy.data]);
  const save = useSubmit(async () => {
    setSaved(false);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw new Error(`Not valid JSON: ${(err as Error).message}`, { cause: err });
    }
    await api('PUT', `v1/tenants/${encodeURIComponent(tenant)}/policy`, { body });
    setSaved(true);
    policy.reload();
  });
  return (
    <form onSubmit={save.submit}>
      <label class="field">
        <span>Policy of {tenant} (JSON: templates, parameter limits, counts, concurrency, approvals)</span>
        <textarea
          class="code"
          rows={14}
          spellcheck={false}
          value={text}
          onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
        />
      </label>
      <ErrorBanner error={save.error ?? policy.error} title="Not saved:" />
      {saved && <Notice tone="good">Saved.</Notice>}
      <button type="submit" class="primary">
        Save policy
      </button>
    </form>
  );
}
