import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { readFileSync } from 'node:fs';
import { rsort, satisfies } from 'semver';
import { errors } from './errors.js';
import type { KindInfo, KindRegistry } from './kinds.js';
import { LruCache } from './lru.js';
import {
  PLATFORM_SCOPE,
  type TemplateDoc,
  type TemplateFile,
  type TemplateVersionDoc,
  type TemplateVersionState,
} from './models/template.js';
import type { Models } from './models/index.js';
import { type ParametersSchema, secretParametersOf } from './parameters.js';
import type { TenantPolicy } from './policy.js';

/** A template's name: a kind name (what manifests say in `kind`), also its Pulumi project name. */
export const TEMPLATE_NAME_PATTERN = '^[A-Za-z][A-Za-z0-9-]{0,62}$';

/**
 * The packages a template's program may import besides Node's own modules: what every runner
 * provides (`GET /v1/runtime`). A program is compiled and run against these versions.
 */
export const RUNTIME_PACKAGES = ['@pulumi/pulumi', 'yaml'] as const;

export interface RuntimePackage {
  name: string;
  version: string;
  /** The package's folder on this machine. */
  dir: string;
}

const require = createRequire(import.meta.url);

/** The runtime packages as this process has them (the runners' image is the API's image). */
export function runtimePackages(): RuntimePackage[] {
  return RUNTIME_PACKAGES.map((name) => {
    const manifest = require.resolve(`${name}/package.json`);
    const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string };
    return { name, version, dir: dirname(manifest) };
  });
}

/** The package an import specifier names (`@pulumi/pulumi/dynamic` → `@pulumi/pulumi`), or undefined for a relative path. */
export function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/')) return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** The compiled file a source file becomes (`src/index.ts` → `src/index.js`). */
export function compiledPath(path: string): string {
  return path.replace(/\.(ts|mts|cts)$/, '.js');
}

/** SHA-256 of what a version runs and checks: its files, entry, parameters and defaults (stable order). */
export function templateContentHash(version: Pick<TemplateVersionDoc, 'files' | 'main' | 'parameters' | 'defaults'>): string {
  const files = [...version.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const canonical = JSON.stringify({
    main: version.main,
    parameters: version.parameters,
    defaults: version.defaults,
    files: files.map((f: TemplateFile) => [f.path, f.content]),
  });
  return createHash('sha256').update(canonical).digest('hex');
}

/**
 * Parsed schemas of versions that can no longer change, by version id: the validator compiles a
 * schema once per object, so the same version keeps the same object.
 */
const schemas = new LruCache<string, ParametersSchema>(1000);

function schemaOf(version: Pick<TemplateVersionDoc, '_id' | 'state' | 'parameters'>): ParametersSchema {
  if (version.state === 'draft' || version.state === 'checking') return JSON.parse(version.parameters) as ParametersSchema;
  const known = schemas.get(version._id);
  if (known) return known;
  const parsed = JSON.parse(version.parameters) as ParametersSchema;
  schemas.set(version._id, parsed);
  return parsed;
}

/** What a resource of an uploaded template's version runs: the kind info the runner and the API use. */
export function versionKindInfo(template: Pick<TemplateDoc, 'provider' | 'scope'>, version: TemplateVersionDoc, dir = ''): KindInfo {
  const parameters = schemaOf(version);
  return {
    kind: version.name,
    dir,
    project: version.name,
    main: compiledPath(version.main),
    provider: template.provider,
    description: version.description,
    localPaths: [],
    version: version.version,
    parameters,
    secretParameters: secretParametersOf(parameters),
    readme: version.readme,
    ownerScope: template.scope,
  };
}

/** A template as a resource uses it: built in (MODULES_DIR), or an uploaded template's version. */
export interface ResolvedTemplate {
  info: KindInfo;
  source: 'system' | 'uploaded';
  template?: TemplateDoc;
  version?: TemplateVersionDoc;
}

/** Versions a resource may run (or be upgraded to, or created with, in the `published` state only). */
const RUNNABLE_STATES: TemplateVersionState[] = ['published', 'deprecated', 'archived'];

/** The uploaded template a tenant sees by this name: its own, else the platform's. */
export async function findTemplate(models: Pick<Models, 'Template'>, tenantId: string, name: string): Promise<TemplateDoc | undefined> {
  const found = await models.Template.find({ name, scope: { $in: [tenantId, PLATFORM_SCOPE] } }).lean<TemplateDoc[]>();
  return found.find((t) => t.scope === tenantId) ?? found[0];
}

/**
 * The template a tenant's resource of kind `name` uses. With `version`, that version (a resource's
 * pinned one: any published, deprecated or archived version); without, the newest `published`
 * version the tenant's policy allows (a new resource). Unknown names and versions: 400 naming them.
 */
export async function resolveTemplate(
  models: Pick<Models, 'Template' | 'TemplateVersion'>,
  kinds: KindRegistry,
  tenantId: string,
  name: string,
  options: { version?: string; policy?: TenantPolicy } = {},
): Promise<ResolvedTemplate> {
  const builtIn = kinds.get(name);
  if (builtIn) return { info: builtIn, source: 'system' };
  const template = await findTemplate(models, tenantId, name);
  if (!template) {
    throw errors.invalidManifest(
      `kind "${name}" is unknown; known kinds: ${[...kinds.keys()].join(', ') || '(none)'} and the uploaded templates (GET /v1/templates)`,
    );
  }
  const versions = await models.TemplateVersion.find(
    {
      templateId: template._id,
      state: options.version ? { $in: RUNNABLE_STATES } : 'published',
      ...(options.version ? { version: options.version } : {}),
    },
    { files: 0 },
  ).lean<TemplateVersionDoc[]>();
  const range = options.policy?.templates?.[name]?.versions;
  const candidates = versions.filter(
    (v) => options.version !== undefined || range === undefined || satisfies(v.version, range, { includePrerelease: true }),
  );
  const newest = rsort(candidates.map((v) => v.version))[0];
  const version = candidates.find((v) => v.version === newest);
  if (!version) {
    throw options.version
      ? errors.invalidManifest(`template ${name} has no published version ${options.version}`)
      : errors.invalidManifest(
          `template ${name} has no published version${range ? ` in ${range} (the tenant's policy)` : ''} to create a resource with`,
        );
  }
  return { info: versionKindInfo(template, version), source: 'uploaded', template, version };
}
