import {
  errors,
  findTemplate,
  type KindRegistry,
  type Models,
  PLATFORM_SCOPE,
  type Principal,
  type QueueingDeps,
  templateContentHash,
  type TemplateDoc,
  type TemplateFile,
  type TemplateVersionDoc,
  type TemplateVersionState,
} from '@pds/shared';
import { rcompare, valid } from 'semver';
import { tenantService } from '../services/tenants.js';
import { assertFiles, jsonText } from './content.js';
import { type PublishDeps, smokePreview, staticChecks } from './publish.js';
import { uploadedTemplateView, versionView } from './views.js';

export interface TemplateServiceDeps extends QueueingDeps {
  models: Models;
  kinds: KindRegistry;
  publishCheckTimeoutMs: number;
}

export interface NewTemplate {
  name: string;
  description?: string;
  provider?: string;
  /** Platform admins: the tenant that owns it; absent, the platform (every tenant sees it). */
  tenant?: string;
}

export interface VersionContent {
  main?: string;
  files: TemplateFile[];
  parameters?: Record<string, unknown>;
  defaults?: Record<string, unknown>;
  description?: string;
  readme?: string;
}

/** At most this many templates per tenant (and for the platform), and versions per template. */
export const TEMPLATE_COUNT_LIMITS = { templates: 200, versions: 500 } as const;

/** Moves between states a person may make (publishing is its own step, with its checks). */
const STATE_MOVES: Record<string, TemplateVersionState[]> = {
  published: ['deprecated'],
  deprecated: ['published', 'archived'],
  archived: ['deprecated'],
};

/** Versions everyone who sees the template may read; drafts are their owner's. */
const RELEASED: TemplateVersionState[] = ['published', 'deprecated', 'archived'];

/** Whether a caller owns a template: a platform admin any, a tenant's token its own tenant's. */
const ownsTemplate = (principal: Principal, template: TemplateDoc) => principal.role === 'platform' || template.scope === principal.tenant;

function isDuplicateKey(err: unknown): boolean {
  return (err as { code?: number }).code === 11000;
}

/** Uploaded templates and their versions; knows nothing of HTTP. */
export function templateService(deps: TemplateServiceDeps) {
  const { models, kinds } = deps;
  const tenants = tenantService({ models });

  /** The template a caller means by `name`: its tenant's own, else the platform's; a platform admin names the tenant (`?tenant=`) or means the platform's. */
  async function find(principal: Principal, name: string, tenant?: string): Promise<TemplateDoc> {
    if (principal.role !== 'platform' && principal.tenant === undefined)
      throw errors.forbidden(`token "${principal.name}" belongs to no tenant`);
    const scope = principal.role === 'platform' ? tenant : principal.tenant;
    const found =
      scope === undefined
        ? await models.Template.findOne({ scope: PLATFORM_SCOPE, name }).lean<TemplateDoc>()
        : await findTemplate(models, scope, name);
    if (!found) throw errors.notFound(`template ${name} not found`);
    return found;
  }

  /** The template, when the caller may change it: a platform admin any, a tenant admin its own tenant's. */
  async function findToChange(principal: Principal, name: string, tenant?: string): Promise<TemplateDoc> {
    const template = await find(principal, name, tenant);
    if (principal.role !== 'platform' && template.scope !== principal.tenant) {
      throw errors.forbidden(`template ${name} belongs to the platform; only platform admins change it`);
    }
    return template;
  }

  async function findVersion(template: TemplateDoc, version: string): Promise<TemplateVersionDoc> {
    const doc = await models.TemplateVersion.findOne({ templateId: template._id, version }).lean<TemplateVersionDoc>();
    if (!doc) throw errors.notFound(`template ${template.name} has no version ${version}`);
    return doc;
  }

  /** A version's stored fields from what was sent (checked: paths, sizes, JSON sizes). */
  function contentFields(content: VersionContent) {
    const main = content.main ?? (content.files.some((f) => f.path === 'index.ts') ? 'index.ts' : 'index.js');
    assertFiles(content.files, main);
    return {
      main,
      files: content.files.map((f) => ({ path: f.path, content: f.content })),
      parameters: jsonText('parameters', content.parameters ?? { type: 'object' }),
      defaults: jsonText('defaults', content.defaults ?? {}),
      description: content.description ?? '',
      readme: content.readme ?? '',
    };
  }

  async function latestPublished(templateIds: string[]): Promise<Map<string, TemplateVersionDoc>> {
    const versions = await models.TemplateVersion.find(
      { templateId: { $in: templateIds }, state: 'published' },
      { files: 0, compiled: 0 },
    ).lean<TemplateVersionDoc[]>();
    const latest = new Map<string, TemplateVersionDoc>();
    for (const v of versions.sort((a, b) => rcompare(a.version, b.version))) if (!latest.has(v.templateId)) latest.set(v.templateId, v);
    return latest;
  }

  return {
    find,

    async create(input: NewTemplate, principal: Principal) {
      if (kinds.has(input.name)) throw errors.conflict(`${input.name} is a built-in template (MODULES_DIR)`);
      const scope =
        principal.role === 'platform'
          ? input.tenant === undefined
            ? PLATFORM_SCOPE
            : await tenants.actingTenant(principal, input.tenant)
          : await tenants.actingTenant(principal, input.tenant);
      // One name means one template to a tenant: its own may not hide the platform's, nor the other way.
      const clash =
        scope === PLATFORM_SCOPE
          ? await models.Template.exists({ name: input.name })
          : await models.Template.exists({ name: input.name, scope: { $in: [scope, PLATFORM_SCOPE] } });
      if (clash)
        throw errors.conflict(
          `a template named ${input.name} exists${scope === PLATFORM_SCOPE ? '' : ` for tenant ${scope} (its own or the platform's)`}`,
        );
      if ((await models.Template.countDocuments({ scope })) >= TEMPLATE_COUNT_LIMITS.templates) {
        throw errors.conflict(
          `${scope === PLATFORM_SCOPE ? 'the platform' : `tenant ${scope}`} has ${TEMPLATE_COUNT_LIMITS.templates} templates, the most it may have`,
        );
      }
      try {
        const doc = await models.Template.create({
          scope,
          name: input.name,
          description: input.description ?? '',
          provider: input.provider ?? 'none',
          createdBy: principal.name,
        });
        return {
          template: uploadedTemplateView(doc.toObject() as TemplateDoc, undefined),
          tenant: scope === PLATFORM_SCOPE ? undefined : scope,
        };
      } catch (err) {
        if (isDuplicateKey(err)) throw errors.conflict(`a template named ${input.name} exists`);
        throw err;
      }
    },

    /** The uploaded templates a caller sees (a platform admin without `tenant`: all), each with its newest published version. */
    async list(principal: Principal, tenant?: string) {
      if (principal.role !== 'platform' && principal.tenant === undefined)
        throw errors.forbidden(`token "${principal.name}" belongs to no tenant`);
      const scope = principal.role === 'platform' ? tenant : principal.tenant;
      const filter = scope === undefined ? {} : { scope: { $in: [scope, PLATFORM_SCOPE] } };
      const templates = await models.Template.find(filter).sort({ name: 1 }).limit(1000).lean<TemplateDoc[]>();
      const latest = await latestPublished(templates.map((t) => t._id));
      return templates.map((t) => ({ template: t, latest: latest.get(t._id) }));
    },

    async latest(template: TemplateDoc): Promise<TemplateVersionDoc | undefined> {
      return (await latestPublished([template._id])).get(template._id);
    },

    /** Its versions; a caller who does not own the template (a tenant, of a platform template) sees only released ones. */
    async versions(template: TemplateDoc, principal: Principal) {
      const filter = ownsTemplate(principal, template) ? {} : { state: { $in: RELEASED } };
      const docs = await models.TemplateVersion.find({ templateId: template._id, ...filter }, { files: 0, compiled: 0 }).lean<
        TemplateVersionDoc[]
      >();
      return docs.sort((a, b) => rcompare(a.version, b.version)).map((v) => versionView(v));
    },

    async version(template: TemplateDoc, version: string, principal: Principal) {
      const doc = await findVersion(template, version);
      if (!ownsTemplate(principal, template) && !RELEASED.includes(doc.state))
        throw errors.notFound(`template ${template.name} has no version ${version}`);
      return versionView(doc, true);
    },

    findVersion,
    findToChange,

    async addVersion(template: TemplateDoc, version: string, content: VersionContent, principal: Principal) {
      if (valid(version) !== version || version.includes('+')) {
        throw errors.invalidRequest(`version: "${version}" is not a semantic version without build metadata (1.2.3, 1.2.3-rc.1)`);
      }
      if ((await models.TemplateVersion.countDocuments({ templateId: template._id })) >= TEMPLATE_COUNT_LIMITS.versions) {
        throw errors.conflict(`template ${template.name} has ${TEMPLATE_COUNT_LIMITS.versions} versions, the most it may have`);
      }
      try {
        const doc = await models.TemplateVersion.create({
          templateId: template._id,
          scope: template.scope,
          name: template.name,
          version,
          state: 'draft',
          ...contentFields(content),
          createdBy: principal.name,
        });
        return versionView(doc.toObject() as TemplateVersionDoc, true);
      } catch (err) {
        if (isDuplicateKey(err)) throw errors.conflict(`template ${template.name} has a version ${version} already`);
        throw err;
      }
    },

    /** Replaces a draft's content; a published version never changes. */
    async updateDraft(template: TemplateDoc, version: string, content: VersionContent) {
      const doc = await models.TemplateVersion.findOneAndUpdate(
        { templateId: template._id, version, state: 'draft' },
        { $set: { ...contentFields(content) }, $unset: { compiled: 1, sha256: 1, check: 1 } },
        { returnDocument: 'after' },
      ).lean<TemplateVersionDoc>();
      if (doc) return versionView(doc, true);
      const current = await findVersion(template, version);
      throw errors.conflict(`template ${template.name} ${version} is ${current.state}: only a draft can change (add a new version)`);
    },

    /**
     * Publishes a draft after its checks (400 naming the first that fails): schema, defaults,
     * version step, compile, then a smoke preview on a runner. 409 while another publish checks it.
     */
    async publish(template: TemplateDoc, version: string, principal: Principal, publishDeps: PublishDeps) {
      const draft = await findVersion(template, version);
      const stale = new Date(Date.now() - deps.publishCheckTimeoutMs - 60_000);
      if (draft.state !== 'draft' && !(draft.state === 'checking' && (draft.check?.startedAt ?? new Date(0)) < stale)) {
        throw errors.conflict(`template ${template.name} ${version} is ${draft.state}: only a draft is published`);
      }
      // Claimed first, so that parallel publishes of one draft do not each compile it.
      const claimed = await models.TemplateVersion.findOneAndUpdate(
        { _id: draft._id, updatedAt: draft.updatedAt, state: draft.state },
        { $set: { state: 'checking', check: { startedAt: new Date() } } },
        { returnDocument: 'after' },
      ).lean<TemplateVersionDoc>();
      if (!claimed) throw errors.conflict(`template ${template.name} ${version} changed or is being published by someone else; try again`);
      const backToDraft = (error: string) =>
        models.TemplateVersion.updateOne({ _id: draft._id, state: 'checking' }, { $set: { state: 'draft', 'check.error': error } });
      let compiled: TemplateFile[];
      try {
        compiled = await staticChecks(models, claimed);
      } catch (err) {
        await backToDraft((err as Error).message);
        throw err;
      }
      await models.TemplateVersion.updateOne({ _id: draft._id }, { $set: { compiled, sha256: templateContentHash(claimed) } });
      claimed.sha256 = templateContentHash(claimed);
      const end = await smokePreview(publishDeps, template, claimed, principal).catch(async (err: Error) => {
        await backToDraft(err.message);
        throw errors.unavailable(`the smoke preview could not be queued: ${err.message}`);
      });
      if (end.status !== 'succeeded') {
        const error =
          end.status === 'timeout'
            ? `no runner finished the smoke preview (job ${end.jobId}) within ${deps.publishCheckTimeoutMs / 1000} s`
            : `the smoke preview (pulumi preview with the defaults on a throw-away stack, job ${end.jobId}) ended ${end.status}: ${end.error ?? ''}`;
        await backToDraft(error);
        throw end.status === 'timeout' ? errors.unavailable(error) : errors.invalidRequest(error);
      }
      const published = await models.TemplateVersion.findOneAndUpdate(
        { _id: draft._id, state: 'checking' },
        { $set: { state: 'published', publishedAt: new Date(), publishedBy: principal.name }, $unset: { 'check.error': 1 } },
        { returnDocument: 'after' },
      ).lean<TemplateVersionDoc>();
      if (!published) throw errors.conflict(`template ${template.name} ${version} changed while it was checked; publish it again`);
      return versionView(published);
    },

    /** Deprecates (no new resources), archives, or brings back a published version. */
    async setState(template: TemplateDoc, version: string, state: TemplateVersionState) {
      const current = await findVersion(template, version);
      if (!(STATE_MOVES[current.state] ?? []).includes(state)) {
        throw errors.conflict(
          `template ${template.name} ${version} is ${current.state}: it can become ${(STATE_MOVES[current.state] ?? []).join(' or ') || 'nothing else'} (publish a draft with POST …/publish)`,
        );
      }
      const doc = await models.TemplateVersion.findOneAndUpdate(
        { _id: current._id, state: current.state },
        { $set: { state } },
        { returnDocument: 'after' },
      ).lean<TemplateVersionDoc>();
      if (!doc) throw errors.conflict(`template ${template.name} ${version} changed meanwhile; read it again`);
      return versionView(doc);
    },
  };
}

export type TemplateService = ReturnType<typeof templateService>;
