import { api, type Page } from '../lib/api.js';
import { useLoad } from '../lib/hooks.js';
import { href } from '../lib/router.js';
import { can, type Me } from '../lib/session.js';
import type { Template } from '../lib/types.js';
import { Empty, ErrorBanner } from '../components/ui.js';
import { NewTemplate } from '../components/new-template.js';

const SOURCES: { title: string; pick(t: Template): boolean }[] = [
  { title: 'Built in', pick: (t) => t.source === 'system' },
  { title: 'From the platform team', pick: (t) => t.source === 'uploaded' && t.owner === 'platform' },
  { title: "Your team's", pick: (t) => t.source === 'uploaded' && t.owner !== 'platform' },
];

/** The catalogue: built-in, platform and the tenant's own templates, each opening its deploy form. */
export function TemplatesPage({ me }: { me: Me }) {
  const list = useLoad((signal) => api<Page<Template>>('GET', 'v1/templates', { signal }), []);
  const items = list.data?.items ?? [];
  return (
    <section aria-labelledby="templates-title">
      <div class="page-head">
        <h1 id="templates-title">Templates</h1>
      </div>
      <ErrorBanner error={list.error} title="Could not load the templates:" />
      {list.data && items.length === 0 && <Empty>No templates.</Empty>}
      {SOURCES.map(({ title, pick }) => {
        const group = items.filter(pick);
        if (group.length === 0) return null;
        return (
          <div key={title}>
            <h2>{title}</h2>
            <ul class="cards">
              {group.map((t) => (
                <li key={`${t.owner ?? ''}/${t.name}`} class="card">
                  <h3>
                    <a href={href(['templates', t.name])}>{t.name}</a>
                  </h3>
                  <p>{t.description ?? 'No description.'}</p>
                  <p class="muted small">
                    {t.version ? `v${t.version}` : 'no published version'}
                    {t.provider && t.provider !== 'none' ? ` · ${t.provider}` : ''}
                    {t.allowed === false ? ' · not allowed for your tenant' : ''}
                  </p>
                </li>
              ))}
            </ul>
          </div>
        );
      })}
      {can(me, 'admin') && <NewTemplate me={me} />}
    </section>
  );
}
