import type { ComponentChildren } from 'preact';
import { useId, useRef, useState } from 'preact/hooks';
import { label, tone } from '../lib/format.js';

export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge tone-${tone(status)}`}>{label(status)}</span>;
}

export function ErrorBanner({ error, title }: { error?: Error | string; title?: string }) {
  if (!error) return null;
  return (
    <div class="banner bad" role="alert">
      {title && <strong>{title} </strong>}
      {typeof error === 'string' ? error : error.message}
    </div>
  );
}

export function Notice({ children, tone: kind = 'info' }: { children: ComponentChildren; tone?: 'info' | 'good' | 'bad' | 'wait' }) {
  return (
    <div class={`banner ${kind}`} role="status">
      {children}
    </div>
  );
}

/** A button that copies `text`, and says so for a moment. */
export function CopyButton({ text, label: name }: { text: string; label: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <button
      type="button"
      class="ghost small"
      aria-label={`Copy ${name}`}
      onClick={() =>
        void navigator.clipboard?.writeText(text).then(() => {
          setCopied(true);
          setTimeout(() => setCopied(false), 1_500);
        })
      }
    >
      {copied ? 'Copied' : 'Copy'}
    </button>
  );
}

/**
 * A button whose action needs a confirmation first: a modal dialog that says what will change, with
 * an optional comment. A disabled one says why (a title, and the text people see on focus).
 */
export function ConfirmButton(props: {
  label: string;
  title: string;
  body: ComponentChildren;
  confirmLabel?: string;
  danger?: boolean;
  comment?: string;
  disabledReason?: string;
  onConfirm(comment: string): Promise<void> | void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [comment, setComment] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const titleId = useId();
  const confirm = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await props.onConfirm(comment);
      dialog.current?.close();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button
        type="button"
        class={props.danger ? 'danger' : ''}
        disabled={Boolean(props.disabledReason)}
        title={props.disabledReason}
        onClick={() => dialog.current?.showModal()}
      >
        {props.label}
      </button>
      <dialog ref={dialog} aria-labelledby={titleId}>
        <form method="dialog" onSubmit={(e) => (e.preventDefault(), void confirm())}>
          <h2 id={titleId}>{props.title}</h2>
          <div class="dialog-body">{props.body}</div>
          {props.comment !== undefined && (
            <label class="field">
              <span>{props.comment}</span>
              <textarea rows={3} value={comment} onInput={(e) => setComment((e.target as HTMLTextAreaElement).value)} />
            </label>
          )}
          <ErrorBanner error={error} />
          <div class="actions">
            <button type="button" class="ghost" onClick={() => dialog.current?.close()}>
              Keep as is
            </button>
            <button type="submit" class={props.danger ? 'danger' : 'primary'} disabled={busy}>
              {busy ? 'Working…' : (props.confirmLabel ?? props.label)}
            </button>
          </div>
        </form>
      </dialog>
    </>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>;
}

export function Pager({ hasOlder, hasNewer, older, newer }: { hasOlder: boolean; hasNewer: boolean; older(): void; newer(): void }) {
  if (!hasOlder && !hasNewer) return null;
  return (
    <nav class="pager" aria-label="Pages">
      <button type="button" class="ghost" disabled={!hasNewer} onClick={newer}>
        ← Newer
      </button>
      <button type="button" class="ghost" disabled={!hasOlder} onClick={older}>
        Older →
      </button>
    </nav>
  );
}
