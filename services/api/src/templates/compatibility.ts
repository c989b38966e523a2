import { diff, major } from 'semver';
import type { ParametersSchema } from '@pds/shared';

type Schema = Record<string, unknown>;

const propertiesOf = (schema: Schema) => (schema.properties ?? {}) as Record<string, Schema>;
const requiredOf = (schema: Schema) => new Set((schema.required ?? []) as string[]);

/**
 * What a new schema takes away from manifests the old one accepted: a newly required parameter, an
 * enum that lost a value (or appeared), a parameter removed where no others are allowed. Walks
 * `properties` (and array `items`) to any depth; each change names its field.
 */
export function breakingChanges(before: ParametersSchema, after: ParametersSchema, path = 'spec'): string[] {
  const changes: string[] = [...narrowedRules(before, after, path)];
  const [oldProps, newProps] = [propertiesOf(before), propertiesOf(after)];
  const oldRequired = requiredOf(before);
  for (const key of requiredOf(after)) {
    if (!oldRequired.has(key)) changes.push(`${path}.${key} is newly required`);
  }
  for (const [key, oldProp] of Object.entries(oldProps)) {
    const newProp = newProps[key];
    const field = `${path}.${key}`;
    if (!newProp) {
      if (after.additionalProperties === false) changes.push(`${field} was removed`);
      continue;
    }
    changes.push(...narrowedEnum(oldProp, newProp, field), ...breakingChanges(oldProp, newProp, field));
    const [oldItems, newItems] = [oldProp.items, newProp.items] as (Schema | undefined)[];
    if (oldItems && newItems && typeof oldItems === 'object' && typeof newItems === 'object') {
      changes.push(...narrowedEnum(oldItems, newItems, `${field}[]`), ...breakingChanges(oldItems, newItems, `${field}[]`));
    }
  }
  return changes;
}

/** Bounds that may only grow (a larger maximum accepts what a smaller one did) or only shrink. */
const UPPER = ['maximum', 'exclusiveMaximum', 'maxLength', 'maxItems', 'maxProperties'];
const LOWER = ['minimum', 'exclusiveMinimum', 'minLength', 'minItems', 'minProperties'];
/** Rules whose change is not compared in detail: any change is taken as breaking. */
const OPAQUE = [
  'type',
  'pattern',
  'patternProperties',
  'format',
  'const',
  'multipleOf',
  'uniqueItems',
  'allOf',
  'anyOf',
  'oneOf',
  'not',
  'if',
  'then',
  'else',
  '$ref',
  'dependencies',
  'propertyNames',
  'contains',
  'definitions',
  '$defs',
];

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Rules of one schema level that accept less than before, each named with its values. */
function narrowedRules(before: Schema, after: Schema, field: string): string[] {
  const changes: string[] = [];
  const shown = (v: unknown) => (v === undefined ? 'none' : JSON.stringify(v));
  for (const key of UPPER) {
    const [was, is] = [before[key], after[key]] as (number | undefined)[];
    if (is !== undefined && (was === undefined || is < was)) changes.push(`${field}'s ${key} went from ${shown(was)} to ${is}`);
  }
  for (const key of LOWER) {
    const [was, is] = [before[key], after[key]] as (number | undefined)[];
    if (is !== undefined && (was === undefined || is > was)) changes.push(`${field}'s ${key} went from ${shown(was)} to ${is}`);
  }
  for (const key of OPAQUE) {
    if (!same(before[key], after[key]))
      changes.push(`${field}'s ${key} changed (${shown(before[key]).slice(0, 80)} → ${shown(after[key]).slice(0, 80)})`);
  }
  if (after.additionalProperties === false && before.additionalProperties !== false)
    changes.push(`${field} no longer takes other properties`);
  return changes;
}

function narrowedEnum(before: Schema, after: Schema, field: string): string[] {
  if (!Array.isArray(after.enum)) return [];
  if (!Array.isArray(before.enum)) return [`${field} now has an enum`];
  const kept = new Set(after.enum.map((v) => JSON.stringify(v)));
  const lost = before.enum.filter((v) => !kept.has(JSON.stringify(v)));
  return lost.length > 0 ? [`${field}'s enum no longer allows ${lost.map((v) => JSON.stringify(v)).join(', ')}`] : [];
}

/** Whether going from `from` to `to` may break manifests: a new major version (for 0.x, a new minor one). */
export function allowsBreaking(from: string, to: string): boolean {
  const step = diff(from, to);
  if (step === 'major' || step === 'premajor') return true;
  return major(from) === 0 && (step === 'minor' || step === 'preminor');
}
