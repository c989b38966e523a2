import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { useSubmit } from '../lib/hooks.js';
import { href, navigate } from '../lib/router.js';
import type { Me } from '../lib/session.js';
import { ErrorBanner } from './ui.js';

/** Admins: a new uploaded template of their tenant (a platform admin's: the platform's), opened in the editor. */
export function NewTemplate({ me }: { me: Me }) {
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const create = useSubmit(async () => {
    await api('POST', 'v1/templates', { body: { name, ...(description ? { description } : {}) } });
    navigate(href(['templates', name, 'edit']));
  });
  return (
    <>
      <h2>New template</h2>
      <p class="muted">{me.role === 'platform' ? 'A platform template: every tenant sees it.' : `A template of ${me.tenant}.`}</p>
      <form class="inline-form" onSubmit={create.submit}>
        <label class="field">
          <span>Name (the kind manifests name)</span>
          <input
            value={name}
            required
            pattern="[A-Za-z][A-Za-z0-9\-]{0,62}"
            onInput={(e) => setName((e.target as HTMLInputElement).value)}
          />
        </label>
        <label class="field">
          <span>Description</span>
          <input value={description} maxLength={2000} onInput={(e) => setDescription((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit" class="primary">
          Create and edit
        </button>
      </form>
      <ErrorBanner error={create.error} />
    </>
  );
}
