import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { errors } from './errors.js';

/** A template's parameters schema: JSON Schema draft-07 for a manifest's `spec`. */
export type ParametersSchema = Record<string, unknown>;

// Strict: no type coercion, no defaults filled in, every error reported; unknown keywords are an
// error in the schema itself (a typo in a template must not silently drop a rule).
// One validator instance per schema: a schema's `$id` lives in its instance's registry, so one
// template's schema can neither `$ref` another's nor take its `$id`, and all of it goes with the schema.
function newAjv(): Ajv {
  const ajv = new Ajv({ strict: true, allErrors: true, coerceTypes: false, useDefaults: false, removeAdditional: false });
  // `x-secret: true` on a parameter: its value reaches the program as Pulumi secret config, never in the manifest it reads.
  ajv.addKeyword({ keyword: 'x-secret', schemaType: 'boolean' });
  return ajv;
}

/** What a stored manifest holds in place of a secret parameter's value (and what a PUT may send back to keep it). */
export const SECRET_PLACEHOLDER = '[secret]';

/**
 * The secret parameters of a schema: the top-level `spec` properties marked `x-secret: true`, which
 * must be strings. Anywhere deeper is refused (they are passed as one Pulumi config key each).
 */
export function secretParametersOf(schema: ParametersSchema | undefined): string[] {
  const properties = (schema?.properties ?? {}) as Record<string, Record<string, unknown>>;
  const keys = Object.entries(properties)
    .filter(([, property]) => property['x-secret'] === true)
    .map(([key, property]) => {
      if (property.type !== 'string') throw new Error(`parameters.properties.${key}: an x-secret parameter must be of type string`);
      if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(key))
        throw new Error(`parameters.properties.${key}: an x-secret parameter needs a plain name (a Pulumi config key)`);
      return key;
    });
  // Anywhere else (deeper, in allOf, $defs…) it would not be sealed: refused rather than ignored.
  const marks = JSON.stringify(schema ?? {}).match(/"x-secret":/g)?.length ?? 0;
  if (marks !== Object.values(properties).filter((p) => 'x-secret' in p).length) {
    throw new Error('x-secret is allowed only on top-level properties of spec');
  }
  return keys;
}
const compiled = new WeakMap<ParametersSchema, ValidateFunction>();

/** Compiles a parameters schema; throws naming what is wrong with it. */
export function compileParameters(schema: ParametersSchema): ValidateFunction {
  const known = compiled.get(schema);
  if (known) return known;
  const validate = newAjv().compile(schema);
  compiled.set(schema, validate);
  return validate;
}

/** `spec.files[0].path` from ajv's `/files/0/path`. */
function fieldOf(instancePath: string, extra?: string): string {
  const parts = instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  return parts.reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : `${path}.${part}`), 'spec');
}

/** One error as a person reads it: the field, then the rule. */
function describe(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties':
      return `${fieldOf(error.instancePath, String(params.additionalProperty))} is not a parameter of this template`;
    case 'required':
      return `${fieldOf(error.instancePath, String(params.missingProperty))} is required`;
    case 'enum':
      return `${fieldOf(error.instancePath)} must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return `${fieldOf(error.instancePath)} ${error.message ?? 'is not valid'}`;
  }
}

/**
 * Validates a manifest's spec against its template's parameters schema, strictly (no coercion,
 * unknown keys refused); a 400 names every field and its rule: `spec.size must be <= 4`.
 */
export function assertParameters(schema: ParametersSchema | undefined, spec: unknown): void {
  if (!schema) return;
  const validate = compileParameters(schema);
  if (validate(spec)) return;
  const problems = [...new Set((validate.errors ?? []).map(describe))];
  throw errors.invalidManifest(problems.join('; '));
}
