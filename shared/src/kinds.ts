import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { valid } from 'semver';
import { parse as parseYaml } from 'yaml';
import { compileParameters, type ParametersSchema, secretParametersOf } from './parameters.js';

/** A kind of resource: a Pulumi program directory in MODULES_DIR, named after the kind. */
export interface KindInfo {
  kind: string;
  /** Absolute path of the program directory (holds Pulumi.yaml and module.yaml). */
  dir: string;
  /** The Pulumi project name from Pulumi.yaml. */
  project: string;
  /** The program's entry file, relative to `dir` (Pulumi.yaml `main`, else index.js). */
  main: string;
  /** The cloud provider whose credential the program needs (`none` for offline programs). */
  provider: string;
  description: string;
  /** Spec fields that name a folder on the runner's machine: kept inside LOCAL_FILES_ROOT (`localPaths`). */
  localPaths: string[];
  /** The template version (semver) of a built-in kind (module.yaml `version`, default 1.0.0). */
  version: string;
  /** The parameters schema (JSON Schema draft-07 for `spec`), if module.yaml has one: manifests are checked against it. */
  parameters?: ParametersSchema;
  /** Its `x-secret` parameters (top-level spec keys), derived from `parameters` once at load. */
  secretParameters: string[];
  /** A longer text for people (module.yaml `readme`). */
  readme: string;
  /**
   * An uploaded template's owner (a tenant, or PLATFORM_SCOPE); absent for built-in ones. A tenant's
   * program does not get the platform credentials shared with the tenant (the platform shared them
   * with the programs it vetted).
   */
  ownerScope?: string;
}

export type KindRegistry = ReadonlyMap<string, KindInfo>;

async function readYaml(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    return parseYaml(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function versionOf(kind: string, value: unknown): string {
  if (value === undefined) return '1.0.0';
  if (typeof value !== 'string' || valid(value) === null)
    throw new Error(`${kind}/module.yaml: version must be a semantic version (1.2.3)`);
  return value;
}

/** A module's parameters schema, compiled once so that a broken one stops the service at start-up, naming the kind. */
function parametersOf(kind: string, value: unknown): ParametersSchema | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new Error(`${kind}/module.yaml: parameters must be a JSON Schema object`);
  try {
    compileParameters(value as ParametersSchema);
  } catch (err) {
    throw new Error(`${kind}/module.yaml: parameters is not a valid JSON Schema: ${(err as Error).message}`, { cause: err });
  }
  return value as ParametersSchema;
}

/** A schema's secret parameters; one marked where it cannot be sealed stops the start, naming the kind. */
function secretParametersIn(kind: string, parameters: ParametersSchema | undefined): string[] {
  try {
    return secretParametersOf(parameters);
  } catch (err) {
    throw new Error(`${kind}/module.yaml: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Reads every kind found in `modulesDir`: a sub-directory with Pulumi.yaml and a module.yaml
 * descriptor (`provider`, `description`). Directories without both are not kinds.
 */
export async function loadKindRegistry(modulesDir: string): Promise<KindRegistry> {
  const registry = new Map<string, KindInfo>();
  const entries = await readdir(modulesDir, { withFileTypes: true });
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const dir = join(modulesDir, entry.name);
    const [project, descriptor] = await Promise.all([readYaml(join(dir, 'Pulumi.yaml')), readYaml(join(dir, 'module.yaml'))]);
    if (!project || !descriptor) continue;
    const parameters = parametersOf(entry.name, descriptor.parameters);
    registry.set(entry.name, {
      kind: entry.name,
      dir,
      project: String(project.name),
      main: typeof project.main === 'string' ? project.main : 'index.js',
      provider: typeof descriptor.provider === 'string' ? descriptor.provider : 'none',
      description: typeof descriptor.description === 'string' ? descriptor.description : '',
      localPaths: Array.isArray(descriptor.localPaths) ? descriptor.localPaths.map(String) : [],
      version: versionOf(entry.name, descriptor.version),
      parameters,
      secretParameters: secretParametersIn(entry.name, parameters),
      readme: typeof descriptor.readme === 'string' ? descriptor.readme : '',
    });
  }
  return registry;
}
