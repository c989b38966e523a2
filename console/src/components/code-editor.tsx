import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import type { DeclarationFile, MountedEditor } from '../editor/monaco.js';

/** The editor's module and stylesheet, relative to assets/ (set by the build). */
declare const EDITOR_ASSETS: { js: string; css: string };

let loading: Promise<typeof import('../editor/monaco.js')> | undefined;

/** Loads Monaco once: its stylesheet, then its module (both files of this origin). */
function loadEditor(): Promise<typeof import('../editor/monaco.js')> {
  loading ??= new Promise<void>((resolve, reject) => {
    const link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = new URL(`assets/${EDITOR_ASSETS.css}`, document.baseURI).toString();
    link.onload = () => resolve();
    link.onerror = () => reject(new Error('its stylesheet did not load'));
    document.head.append(link);
  }).then(() => import(/* the build's file, not bundled */ new URL(`assets/${EDITOR_ASSETS.js}`, document.baseURI).toString()));
  return loading;
}

const fetchTypes = () => api<{ files: DeclarationFile[] }>('GET', 'v1/runtime/types', { cache: 'no-cache' }).then((r) => r.files);

export interface CodeEditorProps {
  path: string;
  value: string;
  label: string;
  small?: boolean;
  onChange(value: string): void;
}

/**
 * Monaco (loaded on first use only: it is most of the console's weight), with a plain text area in
 * its place while it loads, or if it cannot.
 */
export function CodeEditor({ path, value, label, small, onChange }: CodeEditorProps) {
  const host = useRef<HTMLDivElement>(null);
  const editor = useRef<MountedEditor>();
  const latest = useRef(onChange);
  latest.current = onChange;
  /** What the editor last reported: a `value` equal to it is the page catching up, not a change to push back. */
  const reported = useRef<{ path: string; value: string }>();
  const currentPath = useRef(path);
  currentPath.current = path;
  const [failed, setFailed] = useState<string>();
  const [ready, setReady] = useState(false);
  useEffect(() => {
    let disposed = false;
    loadEditor()
      .then(({ mountEditor }) => {
        if (disposed || !host.current) return;
        editor.current = mountEditor(host.current, {
          path,
          value,
          label,
          fetchTypes,
          onChange: (text) => {
            reported.current = { path: currentPath.current, value: text };
            latest.current(text);
          },
        });
        setReady(true);
      })
      .catch((err: Error) => setFailed(err.message));
    return () => {
      disposed = true;
      editor.current?.dispose();
    };
  }, []);
  // A layout effect: it runs right after the render a keystroke caused, before the next keystroke,
  // so the page's copy is never older than the editor's when compared. Pushing an older copy back
  // would undo the person's last keys.
  useLayoutEffect(() => {
    if (reported.current?.path === path && reported.current.value === value) return;
    editor.current?.setValue(path, value);
  }, [path, value, ready]);
  return (
    <div class={`code-editor ${small ? 'small' : ''}`}>
      <div ref={host} class="monaco-host" hidden={!ready} />
      {!ready && (
        <textarea
          class="code"
          aria-label={label}
          spellcheck={false}
          value={value}
          readOnly={!failed}
          onInput={(e) => onChange((e.target as HTMLTextAreaElement).value)}
        />
      )}
      {failed && <small class="muted">The editor did not load ({failed}); a plain text area instead.</small>}
    </div>
  );
}
