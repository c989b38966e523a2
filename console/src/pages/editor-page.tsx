import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../lib/api.js';
import { useLoad } from '../lib/hooks.js';
import { href } from '../lib/router.js';
import { can, type Me } from '../lib/session.js';
import { CodeEditor } from '../components/code-editor.js';
import { ErrorBanner, Notice } from '../components/ui.js';

interface TemplateFile {
  path: string;
  content: string;
}

interface Version {
  version: string;
  state: string;
  files?: TemplateFile[];
  main: string;
  parameters: Record<string, unknown>;
  defaults: Record<string, unknown>;
  readme: string;
  checkJobId?: string;
  checkError?: string;
}

/** What publishing checks, in order (docs/api.md, Uploaded templates); an error names the one that failed. */
export const CHECKS = [
  { id: 'schema', name: 'The parameters schema compiles', failed: /^parameters: not a valid|^parameters.*pattern/ },
  { id: 'defaults', name: 'The defaults validate', failed: /^defaults / },
  { id: 'semver', name: 'The version step fits the change', failed: /needs a new (major|minor) version/ },
  { id: 'imports', name: 'The program imports only the runtime packages', failed: /imports "|is not provided by the runners/ },
  { id: 'compile', name: 'The program compiles', failed: /does not compile/ },
  { id: 'preview', name: 'A smoke preview succeeds', failed: /smoke preview/ },
] as const;

type CheckState = 'pending' | 'running' | 'passed' | 'failed' | 'skipped';

/** A program to start from (the one `pds templates init` writes): one resource whose text comes from the parameters. */
const STARTER: TemplateFile = {
  path: 'index.ts',
  content: `import * as pulumi from '@pulumi/pulumi';
import { parse } from 'yaml';

interface Spec {
  greeting: string;
}
const spec = (parse(process.env.STACK_INPUT_YAML ?? '') as { target: { spec: Spec } }).target.spec;

const provider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: { text: string }) {
    return { id: \`note-\${inputs.text.length}\`, outs: { text: inputs.text } };
  },
};

class Note extends pulumi.dynamic.Resource {
  declare readonly text: pulumi.Output<string>;
  constructor(resourceName: string, text: string) {
    super(provider, resourceName, { text }, {});
  }
}

export const text = new Note('note', spec.greeting).text;
`,
};
const STARTER_PARAMETERS = {
  type: 'object',
  additionalProperties: false,
  required: ['greeting'],
  properties: { greeting: { type: 'string', maxLength: 100, description: 'What the stack says' } },
};

/** The next patch version after the newest one (1.0.0 for the first). */
function nextVersion(versions: Version[]): string {
  const newest = versions[0]?.version;
  if (!newest) return '1.0.0';
  const [major, minor, patch] = newest.split(/[.-]/).map(Number) as [number, number, number];
  return `${major}.${minor}.${patch + 1}`;
}

export function EditorPage({ name, me }: { name: string; me: Me; query: URLSearchParams }) {
  const base = `v1/templates/${encodeURIComponent(name)}/versions`;
  const versions = useLoad((signal) => api<{ items: Version[] }>('GET', base, { signal }), [name]);
  const [version, setVersion] = useState('');
  const [isDraft, setIsDraft] = useState(false);
  const [files, setFiles] = useState<TemplateFile[]>([STARTER]);
  const [current, setCurrent] = useState('index.ts');
  const [parameters, setParameters] = useState(JSON.stringify(STARTER_PARAMETERS, null, 2));
  const [defaults, setDefaults] = useState(JSON.stringify({ greeting: 'hello' }, null, 2));
  const [message, setMessage] = useState<{ tone: 'good' | 'bad'; text: string }>();
  const [checks, setChecks] = useState<Record<string, CheckState>>();
  const [checkJob, setCheckJob] = useState<string>();
  const [busy, setBusy] = useState(false);
  // Nothing is edited or saved before the stored content is in: a save would put the starter over it.
  const [loaded, setLoaded] = useState<'loading' | 'ready' | Error>('loading');

  // Start from the draft, else the newest version's content (as the next version's draft), else the starter.
  useEffect(() => {
    const items = versions.data?.items;
    if (!items) return;
    const draft = items.find((v) => v.state === 'draft');
    const start = draft ?? items[0];
    setIsDraft(Boolean(draft));
    setVersion(draft?.version ?? nextVersion(items));
    if (!start) return setLoaded('ready');
    api<Version>('GET', `${base}/${encodeURIComponent(start.version)}`).then(
      (full) => {
        if (full.files?.length) {
          setFiles(full.files);
          setCurrent(full.main || full.files[0]!.path);
        }
        setParameters(JSON.stringify(full.parameters ?? {}, null, 2));
        setDefaults(JSON.stringify(full.defaults ?? {}, null, 2));
        setLoaded('ready');
      },
      (err: Error) => setLoaded(err),
    );
  }, [versions.data]);

  if (!can(me, 'admin')) return <Notice>Editing templates needs the admin role.</Notice>;
  if (loaded instanceof Error || versions.error)
    return <ErrorBanner error={versions.error ?? (loaded as Error)} title="Could not load the template:" />;
  if (loaded === 'loading') return <p class="loading">Loading the template…</p>;
  const file = files.find((f) => f.path === current) ?? files[0]!;

  const content = () => {
    const parsed = (text: string, field: string) => {
      try {
        return JSON.parse(text) as Record<string, unknown>;
      } catch (err) {
        throw new ApiError(400, `${field}: not valid JSON (${(err as Error).message})`);
      }
    };
    return { files, parameters: parsed(parameters, 'parameters'), defaults: parsed(defaults, 'defaults') };
  };

  const save = async (): Promise<boolean> => {
    setMessage(undefined);
    try {
      if (isDraft) await api('PUT', `${base}/${encodeURIComponent(version)}`, { body: content() });
      else {
        await api('POST', base, { body: { version, ...content() } });
        setIsDraft(true);
      }
      setMessage({ tone: 'good', text: `Draft ${version} saved.` });
      return true;
    } catch (err) {
      setMessage({ tone: 'bad', text: (err as Error).message });
      return false;
    }
  };

  const publish = async () => {
    setBusy(true);
    setCheckJob(undefined);
    setChecks(Object.fromEntries(CHECKS.map((c, i) => [c.id, i === 0 ? 'running' : 'pending'])));
    if (!(await save())) {
      setChecks(undefined);
      return setBusy(false);
    }
    // While the API checks, watch the version: the smoke preview's job appears when the checks before it passed.
    let settled = false;
    const watcher = setInterval(() => {
      void api<Version>('GET', `${base}/${encodeURIComponent(version)}`).then((v) => {
        if (!v.checkJobId || settled) return;
        setCheckJob(v.checkJobId);
        setChecks({ ...Object.fromEntries(CHECKS.map((c) => [c.id, 'passed' as CheckState])), preview: 'running' });
      });
    }, 1_000);
    let outcome: Error | undefined;
    try {
      await api('POST', `${base}/${encodeURIComponent(version)}/publish`, { body: {} });
    } catch (err) {
      outcome = err as Error;
    } finally {
      // A status read still under way must not undo the outcome below.
      settled = true;
      clearInterval(watcher);
      setBusy(false);
    }
    if (!outcome) {
      setChecks(Object.fromEntries(CHECKS.map((c) => [c.id, 'passed'])));
      setMessage({ tone: 'good', text: `${name} ${version} is published: new resources use it.` });
      setIsDraft(false);
      versions.reload();
      return;
    }
    const failedAt = CHECKS.findIndex((c) => c.failed.test(outcome.message));
    setChecks(
      Object.fromEntries(
        CHECKS.map((c, i) => [c.id, failedAt < 0 ? 'skipped' : i < failedAt ? 'passed' : i === failedAt ? 'failed' : 'skipped']),
      ),
    );
    setMessage({ tone: 'bad', text: outcome.message });
  };

  return (
    <section aria-labelledby="editor-title" class="editor-page">
      <div class="page-head">
        <h1 id="editor-title">
          <a href={href(['templates', name])}>{name}</a> · editor
        </h1>
        <label class="field inline">
          <span>Version</span>
          <input value={version} disabled={isDraft} size={10} onInput={(e) => setVersion((e.target as HTMLInputElement).value)} />
        </label>
        <span class="muted">{isDraft ? 'draft' : 'new version'}</span>
        <span class="spacer" />
        <button type="button" onClick={() => void save()} disabled={busy}>
          Save draft
        </button>
        <button type="button" class="primary" onClick={() => void publish()} disabled={busy}>
          {busy ? 'Publishing…' : 'Publish'}
        </button>
      </div>
      <ErrorBanner error={versions.error} />
      {message && (
        <div class={`banner ${message.tone}`} role={message.tone === 'bad' ? 'alert' : 'status'}>
          <pre class="plain-pre">{message.text}</pre>
        </div>
      )}
      {checks && (
        <ol class="checks" aria-label="Publish checks">
          {CHECKS.map((c) => (
            <li key={c.id} class={`check-${checks[c.id]}`}>
              <span class="check-mark" aria-hidden="true">
                {{ pending: '○', running: '◐', passed: '✓', failed: '✗', skipped: '–' }[checks[c.id] ?? 'pending']}
              </span>{' '}
              {c.name} <span class="sr-only">{checks[c.id]}</span>
              {c.id === 'preview' && checkJob && (
                <>
                  {' '}
                  (<a href={href(['jobs', checkJob])}>its job</a>)
                </>
              )}
            </li>
          ))}
        </ol>
      )}
      <div class="editor-grid">
        <div class="editor-main">
          <div class="tabs" role="tablist" aria-label="Files">
            {files.map((f) => (
              <button
                key={f.path}
                type="button"
                role="tab"
                aria-selected={f.path === file.path}
                class="tab"
                onClick={() => setCurrent(f.path)}
              >
                {f.path}
              </button>
            ))}
          </div>
          <CodeEditor
            path={file.path}
            value={file.content}
            label={`Contents of ${file.path}`}
            onChange={(text) => setFiles((old) => old.map((f) => (f.path === file.path ? { ...f, content: text } : f)))}
          />
        </div>
        <div class="editor-side">
          <label class="field">
            <span>Parameters (JSON Schema)</span>
            <CodeEditor path="parameters.json" value={parameters} label="Parameters schema" onChange={setParameters} small />
          </label>
          <label class="field">
            <span>Defaults (the smoke preview's spec)</span>
            <CodeEditor path="defaults.json" value={defaults} label="Defaults" onChange={setDefaults} small />
          </label>
        </div>
      </div>
    </section>
  );
}
