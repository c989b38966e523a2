import { useState } from 'preact/hooks';
import { ApiError } from '../lib/api.js';
import { type Me, signIn } from '../lib/session.js';
import { ErrorBanner, Notice } from '../components/ui.js';

/** Sign-in with an API token; it is kept for this tab only. */
export function SignIn({ reason }: { reason?: string }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const candidate = value.trim();
    if (!candidate) return setError('Paste a token first.');
    setBusy(true);
    setError(undefined);
    try {
      const me = await fetchMe(candidate);
      signIn(candidate, me);
      if (!location.hash || location.hash === '#/') location.hash = '#/jobs';
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="sign-in" tabIndex={-1}>
      <form onSubmit={submit} aria-labelledby="sign-in-title">
        <h1 id="sign-in-title">Sign in to Deployments</h1>
        {reason && <Notice tone="wait">{reason}</Notice>}
        <label class="field">
          <span>API token</span>
          <input
            type="password"
            name="token"
            autoComplete="off"
            spellcheck={false}
            value={value}
            onInput={(e) => setValue((e.target as HTMLInputElement).value)}
            aria-describedby="token-help"
            autoFocus
          />
        </label>
        <p id="token-help" class="help">
          A token your platform team issued (<code>pds_…</code>). It is kept for this browser tab only and is gone when you close it.
        </p>
        <ErrorBanner error={error} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}

async function fetchMe(candidate: string): Promise<Me> {
  // Not through api(): the candidate is not the signed-in token yet.
  const res = await fetch(new URL('../v1/whoami', new URL('.', location.href)), {
    headers: { authorization: `Bearer ${candidate}`, accept: 'application/json' },
    cache: 'no-store',
  }).catch(() => {
    throw new ApiError(0, 'The service cannot be reached: check your connection, then try again.');
  });
  const body = (await res.json().catch(() => ({}))) as Me & { message?: string };
  if (res.status === 401) throw new ApiError(401, `That token was refused: ${body.message ?? 'unknown token'}.`);
  if (!res.ok) throw new ApiError(res.status, body.message ?? `The service answered ${res.status}.`);
  return body;
}
