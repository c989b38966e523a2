import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, ApiError } from '../lib/api.js';
import { useLoad } from '../lib/hooks.js';
import { href, navigate } from '../lib/router.js';
import { can, type Me } from '../lib/session.js';
import type { Job, Resource, Template } from '../lib/types.js';
import { toYaml } from '../lib/yaml.js';
import { Markdown } from '../components/markdown.js';
import { type Errors, initialValue, type JsonSchema, pruned, SchemaFields, validate } from '../components/schema-form.js';
import { ErrorBanner, Notice } from '../components/ui.js';

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** A template's readme and its deploy form. */
export function TemplatePage({ name, me }: { name: string; me: Me; query: URLSearchParams }) {
  const template = useLoad((signal) => api<Template>('GET', `v1/templates/${encodeURIComponent(name)}`, { signal }), [name]);
  const t = template.data;
  if (template.error instanceof ApiError && template.error.status === 404) {
    return (
      <section>
        <h1>Template not found</h1>
        <p>
          There is no template <code>{name}</code> that you can see. <a href={href(['templates'])}>Back to the templates</a>.
        </p>
      </section>
    );
  }
  if (!t) return template.error ? <ErrorBanner error={template.error} /> : <p class="loading">Loading…</p>;
  const editable = t.source === 'uploaded' && can(me, t.owner === 'platform' ? 'platform' : 'admin');
  return (
    <section aria-labelledby="template-title">
      <div class="page-head">
        <h1 id="template-title">{t.name}</h1>
        <span class="muted">{t.version ? `v${t.version}` : 'no published version'}</span>
        {editable && (
          <a class="button" href={href(['templates', t.name, 'edit'])}>
            Edit in the editor
          </a>
        )}
      </div>
      <p>{t.description}</p>
      {t.readme && (
        <details class="readme" open>
          <summary>Readme</summary>
          <Markdown text={t.readme} />
        </details>
      )}
      <h2>Deploy</h2>
      {t.allowed === false ? (
        <Notice tone="wait">Your tenant's policy does not allow this template: ask your platform team.</Notice>
      ) : !t.version && t.source === 'uploaded' ? (
        <Notice>It has no published version yet.</Notice>
      ) : can(me, 'deployer') ? (
        <DeployForm template={t} me={me} />
      ) : (
        <Notice>Deploying needs the deployer role; you are signed in as {me.role}.</Notice>
      )}
    </section>
  );
}

/** `spec.files[0].path is required; spec.size must be <= 4` → one error per field; the rest stays general. */
function fieldErrors(message: string): { fields: Errors; rest: string[] } {
  const fields: Errors = {};
  const rest: string[] = [];
  for (const part of message.split(/;\s+/)) {
    const match = /^((?:spec|metadata)(?:\.[\w-]+|\[\d+\])*) (.+)$/.exec(part);
    if (match) fields[match[1] as string] = match[2] as string;
    else rest.push(part);
  }
  return { fields, rest };
}

function DeployForm({ template, me }: { template: Template; me: Me }) {
  const schemaLoad = useLoad(
    (signal) => api<JsonSchema>('GET', `v1/templates/${encodeURIComponent(template.name)}/schema`, { signal }),
    [template.name],
  );
  const schema = schemaLoad.data;
  const [resourceName, setResourceName] = useState('');
  const [tenant, setTenant] = useState('');
  const [spec, setSpec] = useState<Record<string, unknown>>({});
  const [operation, setOperation] = useState<'up' | 'preview'>('up');
  const [serverErrors, setServerErrors] = useState<Errors>({});
  const [general, setGeneral] = useState<string>();
  const [busy, setBusy] = useState(false);
  const [tried, setTried] = useState(false);
  /** A resource of the same name exists: its id, while the person decides. */
  const [existing, setExisting] = useState<string>();
  useEffect(() => {
    if (schema) setSpec((initialValue(schema) as Record<string, unknown>) ?? {});
  }, [schema]);

  const manifest = useMemo(
    () => ({
      apiVersion: 'deploy.pulumi.dev/v1',
      kind: template.name,
      metadata: { name: resourceName || '<name>' },
      spec: pruned(spec),
    }),
    [template.name, resourceName, spec],
  );
  const yamlText = toYaml(manifest) + '\n';
  // What the page shows: the same manifest with each secret parameter masked.
  const shownYaml = useMemo(() => {
    const masked: Record<string, unknown> = { ...(manifest.spec as Record<string, unknown>) };
    for (const [key, child] of Object.entries(schema?.properties ?? {})) if (child['x-secret'] && masked[key]) masked[key] = '••••••';
    return toYaml({ ...manifest, spec: masked }) + '\n';
  }, [manifest, schema]);
  const local = schema ? validate(schema, pruned(spec), 'spec') : {};
  if (resourceName && !NAME.test(resourceName)) local['metadata.name'] = 'lower-case letters, digits and -, at most 63';
  if (!resourceName && tried) local['metadata.name'] = 'is required';
  const errors = { ...(tried ? local : {}), ...serverErrors };

  /** Creates the resource, or (once the person said so) updates the one of that name; then queues the run. */
  const deploy = async (update?: string) => {
    setTried(true);
    setServerErrors({});
    setGeneral(undefined);
    setExisting(undefined);
    if (Object.keys(local).length > 0 || !resourceName) return;
    setBusy(true);
    const suffix = tenant ? `?tenant=${encodeURIComponent(tenant)}` : '';
    try {
      let resource: Resource;
      if (update) resource = await api<Resource>('PUT', `v1/resources/${encodeURIComponent(update)}`, { yaml: yamlText });
      else {
        try {
          resource = await api<Resource>('POST', `v1/resources${suffix}`, { yaml: yamlText });
        } catch (err) {
          // The name is taken: ask before replacing that resource's manifest (someone else's, perhaps).
          const id = err instanceof ApiError && err.status === 409 ? err.existingId : undefined;
          if (!id) throw err;
          setExisting(id);
          return;
        }
      }
      const job = await api<Job>('POST', `v1/resources/${encodeURIComponent(resource.id)}/jobs`, { body: { operation } });
      navigate(href(['jobs', job.id]));
    } catch (err) {
      const message = (err as Error).message;
      if (err instanceof ApiError && err.status === 400) {
        const { fields, rest } = fieldErrors(message);
        setServerErrors(fields);
        setGeneral(rest.length ? rest.join('; ') : undefined);
      } else setGeneral(message);
    } finally {
      setBusy(false);
    }
  };
  if (!schema) return schemaLoad.error ? <ErrorBanner error={schemaLoad.error} /> : <p class="loading">Loading the parameters…</p>;
  return (
    <div class="deploy">
      <form class="deploy-form" onSubmit={(e) => (e.preventDefault(), void deploy())} noValidate aria-label={`Deploy ${template.name}`}>
        <div class="field">
          <label for="f-metadata-name">
            Name<abbr title="required"> *</abbr>
          </label>
          <input
            id="f-metadata-name"
            value={resourceName}
            required
            aria-invalid={errors['metadata.name'] ? true : undefined}
            aria-describedby="f-metadata-name-help"
            onInput={(e) => setResourceName((e.target as HTMLInputElement).value)}
          />
          <small id="f-metadata-name-help" class="help">
            The resource's name in your tenant; deploying the same name again updates it.
          </small>
          {errors['metadata.name'] && (
            <small class="field-error" role="alert">
              {errors['metadata.name']}
            </small>
          )}
        </div>
        {me.role === 'platform' && (
          <div class="field">
            <label for="f-tenant">Tenant</label>
            <input id="f-tenant" value={tenant} placeholder="default" onInput={(e) => setTenant((e.target as HTMLInputElement).value)} />
          </div>
        )}
        <SchemaFields schema={schema} path="spec" value={spec} errors={errors} onChange={(v) => (setSpec(v), setServerErrors({}))} />
        <fieldset class="group">
          <legend>Run</legend>
          <label class="radio">
            <input type="radio" name="operation" checked={operation === 'up'} onChange={() => setOperation('up')} /> Deploy (up)
          </label>
          <label class="radio">
            <input type="radio" name="operation" checked={operation === 'preview'} onChange={() => setOperation('preview')} /> Preview only
          </label>
        </fieldset>
        {tried && Object.keys(errors).length > 0 && (
          <p class="field-error" role="alert">
            {Object.keys(errors).length} field{Object.keys(errors).length === 1 ? '' : 's'} to fix.
          </p>
        )}
        <ErrorBanner error={general} title="Not deployed:" />
        {existing && (
          <div class="banner wait" role="alert">
            <p>
              A resource named <strong>{resourceName}</strong> exists (<a href={href(['resources', existing])}>open it</a>). Deploying
              replaces its manifest with this one.
            </p>
            <div class="actions left">
              <button type="button" class="primary" onClick={() => void deploy(existing)}>
                Replace it and {operation === 'up' ? 'deploy' : 'preview'}
              </button>
              <button type="button" class="ghost" onClick={() => setExisting(undefined)}>
                Keep it; change the name
              </button>
            </div>
          </div>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Deploying…' : operation === 'up' ? 'Deploy' : 'Preview'}
        </button>
      </form>
      <aside class="yaml" aria-label="The manifest it will send">
        <h3>Manifest</h3>
        <pre class="code">{shownYaml}</pre>
      </aside>
    </div>
  );
}
