import { parseDocument, stringify as stringifyYaml, visit } from 'yaml';
import { errors } from './errors.js';

/** The label that names a resource's Pulumi stack as `org/project/stack`. */
export const STACK_LABEL = 'pulumi.com/stack';

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels: Record<string, string> };
  spec: Record<string, unknown>;
}

const NAME_PATTERN = /^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/;
const FQDN_PATTERN = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The default size cap of a manifest (`MANIFEST_MAX_BYTES`). */
export const MANIFEST_MAX_BYTES = 64 * 1024;

/** The size limit for reading back a stored manifest: it was accepted under the cap of its day. */
export const STORED_MANIFEST = Number.POSITIVE_INFINITY;

/**
 * Parses and validates a manifest's YAML text. Throws a 400 AppError naming the bad field, a 413
 * past `maxBytes`. Anchors and aliases are refused: a few lines of aliases can expand to gigabytes
 * (the "billion laughs"), and a manifest has no need of them.
 * Kind and stack checks that need the kind registry live in `resolveStackFqdn`.
 */
function lineAndColumn(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, col: (before.at(-1)?.length ?? 0) + 1 };
}

export function parseManifest(text: string, maxBytes = MANIFEST_MAX_BYTES): Manifest {
  const size = Buffer.byteLength(text);
  if (size > maxBytes) throw errors.payloadTooLarge(`manifest is ${size} bytes; at most ${maxBytes} are accepted (MANIFEST_MAX_BYTES)`);
  // No pretty errors: their code frame quotes the source line, which may hold a secret parameter.
  const parsed = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (parsed.errors.length > 0) {
    const [first] = parsed.errors;
    const at = first?.linePos?.[0] ?? (first ? lineAndColumn(text, first.pos[0]) : undefined);
    throw errors.invalidManifest(
      `manifest is not valid YAML${at ? ` at line ${at.line}, column ${at.col}` : ''}: ${first?.code ?? 'syntax error'}`,
    );
  }
  // A `%YAML 1.1` directive turns on merge keys (<<), which copy values in from elsewhere without an alias.
  if (/^\s*%YAML/m.test(text)) throw errors.invalidManifest('manifest must not use YAML directives (%YAML)');
  let alias = false;
  visit(parsed, { Alias: () => void (alias = true), Node: (_key, node) => void (alias ||= 'anchor' in node && Boolean(node.anchor)) });
  if (alias) throw errors.invalidManifest('manifest must not use YAML anchors or aliases (& and *)');
  const doc: unknown = parsed.toJS({ maxAliasCount: 0 });
  if (!isPlainObject(doc)) throw errors.invalidManifest('manifest must be a YAML mapping');
  const { apiVersion, kind, metadata, spec } = doc;
  if (typeof apiVersion !== 'string' || apiVersion === '') {
    throw errors.invalidManifest('apiVersion is required and must be a string');
  }
  if (typeof kind !== 'string' || kind === '') {
    throw errors.invalidManifest('kind is required and must be a string');
  }
  if (!isPlainObject(metadata)) throw errors.invalidManifest('metadata is required and must be a mapping');
  const { name, labels = {} } = metadata;
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    throw errors.invalidManifest('metadata.name is required: lower-case letters, digits, "-" and ".", at most 63 characters');
  }
  if (!isPlainObject(labels) || !Object.values(labels).every((v) => typeof v === 'string')) {
    throw errors.invalidManifest('metadata.labels must be a mapping of strings');
  }
  if (!isPlainObject(spec)) throw errors.invalidManifest('spec is required and must be a mapping');
  return { apiVersion, kind, metadata: { name, labels: labels as Record<string, string> }, spec };
}

/**
 * The stack FQDN of a manifest: its `pulumi.com/stack` label, or by default
 * `organization/<project of the kind's program>/<metadata.name>`. The project part must be the
 * project of the kind's Pulumi program, since that program is what runs on the stack.
 */
export function resolveStackFqdn(manifest: Manifest, project: string): string {
  const label = manifest.metadata.labels[STACK_LABEL];
  if (label === undefined) return `organization/${project}/${manifest.metadata.name}`;
  if (!FQDN_PATTERN.test(label)) {
    throw errors.invalidManifest(`metadata.labels["${STACK_LABEL}"] must look like org/project/stack`);
  }
  const labelProject = label.split('/')[1];
  if (labelProject !== project) {
    throw errors.invalidManifest(
      `metadata.labels["${STACK_LABEL}"]: project "${labelProject}" must be "${project}", the project of kind ${manifest.kind}`,
    );
  }
  return label;
}

/** The input a Pulumi program receives as STACK_INPUT_YAML: the manifest as `target`, plus settings. */
export function stackInputYaml(manifest: Manifest, settings: Record<string, unknown> = {}): string {
  return stringifyYaml({ target: manifest, settings });
}
