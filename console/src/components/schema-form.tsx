/** The parts of JSON Schema a template's parameters use (docs/modules.md). */
export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  'x-secret'?: boolean;
  'x-tenant-limit'?: boolean;
}

export type Errors = Record<string, string>;

const typeOf = (schema: JsonSchema) => (Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type);

/** `spec.files[0].path` for the value at `files`, 0, `path`. */
export function pathOf(parent: string, key: string | number): string {
  return typeof key === 'number' ? `${parent}[${key}]` : `${parent}.${key}`;
}

/** Every rule the form can check before sending, by field path (the API checks them all again). */
export function validate(schema: JsonSchema, value: unknown, path: string, errors: Errors = {}): Errors {
  const type = typeOf(schema);
  if (value === undefined || value === '') return errors;
  if (schema.enum && !schema.enum.includes(value)) errors[path] = `must be one of ${schema.enum.map(String).join(', ')}`;
  if (type === 'string' && typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength) errors[path] = `must be at least ${schema.minLength} characters`;
    if (schema.maxLength !== undefined && value.length > schema.maxLength) errors[path] = `must be at most ${schema.maxLength} characters`;
    if (schema.pattern && !new RegExp(schema.pattern, 'u').test(value)) errors[path] = `must match ${schema.pattern}`;
  }
  if ((type === 'integer' || type === 'number') && typeof value === 'number') {
    if (Number.isNaN(value)) errors[path] = 'must be a number';
    else if (type === 'integer' && !Number.isInteger(value)) errors[path] = 'must be a whole number';
    else if (schema.minimum !== undefined && value < schema.minimum) errors[path] = `must be ≥ ${schema.minimum}`;
    else if (schema.maximum !== undefined && value > schema.maximum) errors[path] = `must be ≤ ${schema.maximum}`;
    else if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum)
      errors[path] = `must be < ${schema.exclusiveMaximum}`;
    else if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum)
      errors[path] = `must be > ${schema.exclusiveMinimum}`;
  }
  if (type === 'object' && value && typeof value === 'object' && !Array.isArray(value)) {
    const object = value as Record<string, unknown>;
    for (const name of schema.required ?? []) {
      if (object[name] === undefined || object[name] === '') errors[pathOf(path, name)] = 'is required';
    }
    for (const [name, child] of Object.entries(schema.properties ?? {})) validate(child, object[name], pathOf(path, name), errors);
  }
  if (type === 'array' && Array.isArray(value)) {
    if (schema.maxItems !== undefined && value.length > schema.maxItems) errors[path] = `at most ${schema.maxItems} items`;
    if (schema.minItems !== undefined && value.length < schema.minItems) errors[path] = `at least ${schema.minItems} items`;
    if (schema.items) value.forEach((item, i) => validate(schema.items as JsonSchema, item, pathOf(path, i), errors));
  }
  return errors;
}

/** A starting value for a schema: its default, else empty. */
export function initialValue(schema: JsonSchema): unknown {
  if (schema.default !== undefined) return structuredClone(schema.default);
  const type = typeOf(schema);
  if (type === 'object') {
    const out: Record<string, unknown> = {};
    for (const [name, child] of Object.entries(schema.properties ?? {})) {
      const v = initialValue(child);
      if (v !== undefined && (schema.required ?? []).includes(name)) out[name] = v;
    }
    return out;
  }
  if (type === 'array') return [];
  return undefined;
}

/** Drops empty optional values, so the YAML holds only what the person gave. */
export function pruned(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(pruned);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const p = pruned(v);
      if (p !== undefined && p !== '') out[k] = p;
    }
    return out;
  }
  return value;
}

interface FieldProps {
  schema: JsonSchema;
  name: string;
  path: string;
  value: unknown;
  required: boolean;
  errors: Errors;
  onChange(value: unknown): void;
}

const idOf = (path: string) => `f-${path.replace(/[^A-Za-z0-9]+/g, '-')}`;

function Help({ schema, path, errors }: { schema: JsonSchema; path: string; errors: Errors }) {
  const limits = [
    schema.minimum !== undefined ? `min ${schema.minimum}` : '',
    schema.maximum !== undefined ? `max ${schema.maximum}` : '',
    schema.maxLength !== undefined ? `up to ${schema.maxLength} characters` : '',
    schema['x-tenant-limit'] ? "your tenant's limit" : '',
  ].filter(Boolean);
  return (
    <>
      {(schema.description || limits.length > 0) && (
        <small id={`${idOf(path)}-help`} class="help">
          {schema.description}
          {limits.length ? ` (${limits.join(', ')})` : ''}
        </small>
      )}
      {errors[path] && (
        <small id={`${idOf(path)}-error`} class="field-error" role="alert">
          {errors[path]}
        </small>
      )}
    </>
  );
}

/** One parameter as a form control, chosen by its schema; objects and arrays nest. */
export function SchemaField(props: FieldProps) {
  const { schema, name, path, value, required, errors, onChange } = props;
  const type = typeOf(schema);
  const id = idOf(path);
  const described = [schema.description ? `${id}-help` : '', errors[path] ? `${id}-error` : ''].filter(Boolean).join(' ') || undefined;
  const common = { id, 'aria-describedby': described, 'aria-invalid': errors[path] ? true : undefined, required };
  const title = (
    <span>
      {schema.title ?? name}
      {required ? <abbr title="required"> *</abbr> : null}
      {schema['x-secret'] ? <span class="tag">secret</span> : null}
    </span>
  );
  if (type === 'object' && schema.properties) {
    return (
      <fieldset class="group">
        <legend>{title}</legend>
        <SchemaFields schema={schema} path={path} value={(value as Record<string, unknown>) ?? {}} errors={errors} onChange={onChange} />
      </fieldset>
    );
  }
  if (type === 'array') {
    return <ArrayField {...props} />;
  }
  if (type === 'boolean') {
    return (
      <div class="field check">
        <label>
          <input type="checkbox" {...common} checked={value === true} onChange={(e) => onChange((e.target as HTMLInputElement).checked)} />
          {title}
        </label>
        <Help schema={schema} path={path} errors={errors} />
      </div>
    );
  }
  let control;
  if (schema.enum) {
    control = (
      <select
        {...common}
        value={value === undefined ? '' : String(value)}
        onChange={(e) => onChange(fromText(schema, (e.target as HTMLSelectElement).value))}
      >
        <option value="">{required ? 'choose…' : '—'}</option>
        {schema.enum.map((option) => (
          <option key={String(option)} value={String(option)}>
            {String(option)}
          </option>
        ))}
      </select>
    );
  } else if (type === 'integer' || type === 'number') {
    control = (
      <input
        {...common}
        type="number"
        inputMode={type === 'integer' ? 'numeric' : 'decimal'}
        step={type === 'integer' ? 1 : 'any'}
        min={schema.minimum}
        max={schema.maximum}
        value={value === undefined ? '' : String(value)}
        onInput={(e) => onChange(fromText(schema, (e.target as HTMLInputElement).value))}
      />
    );
  } else if (schema['x-secret']) {
    control = (
      <input
        {...common}
        type="password"
        autoComplete="new-password"
        value={(value as string) ?? ''}
        onInput={(e) => onChange((e.target as HTMLInputElement).value)}
      />
    );
  } else if (schema.maxLength === undefined || schema.maxLength > 4096) {
    control = (
      <textarea {...common} rows={2} value={(value as string) ?? ''} onInput={(e) => onChange((e.target as HTMLTextAreaElement).value)} />
    );
  } else {
    control = (
      <input {...common} type="text" value={(value as string) ?? ''} onInput={(e) => onChange((e.target as HTMLInputElement).value)} />
    );
  }
  return (
    <div class="field">
      <label for={id}>{title}</label>
      {control}
      <Help schema={schema} path={path} errors={errors} />
    </div>
  );
}

function fromText(schema: JsonSchema, text: string): unknown {
  if (text === '') return undefined;
  const type = typeOf(schema);
  if (type === 'integer' || type === 'number') return Number(text);
  if (type === 'boolean') return text === 'true';
  return text;
}

function ArrayField({ schema, name, path, value, errors, onChange }: FieldProps) {
  const items = (value as unknown[]) ?? [];
  const itemSchema = schema.items ?? { type: 'string' };
  return (
    <fieldset class="group">
      <legend>
        {schema.title ?? name} <span class="muted">({items.length})</span>
      </legend>
      <Help schema={schema} path={path} errors={errors} />
      {items.map((item, i) => (
        <div class="array-item" key={i}>
          <SchemaField
            schema={itemSchema}
            name={`${name} ${i + 1}`}
            path={pathOf(path, i)}
            value={item}
            required
            errors={errors}
            onChange={(v) => onChange(items.map((old, j) => (j === i ? v : old)))}
          />
          <button
            type="button"
            class="ghost small"
            aria-label={`Remove ${name} ${i + 1}`}
            onClick={() => onChange(items.filter((_, j) => j !== i))}
          >
            Remove
          </button>
        </div>
      ))}
      <button
        type="button"
        class="small"
        disabled={schema.maxItems !== undefined && items.length >= schema.maxItems}
        onClick={() => {
          onChange([...items, initialValue(itemSchema) ?? (typeOf(itemSchema) === 'string' ? '' : undefined)]);
        }}
      >
        Add {name.replace(/s$/, '')}
      </button>
    </fieldset>
  );
}

/** Every property of an object schema, required ones first. */
export function SchemaFields({
  schema,
  path,
  value,
  errors,
  onChange,
}: {
  schema: JsonSchema;
  path: string;
  value: Record<string, unknown>;
  errors: Errors;
  onChange(value: Record<string, unknown>): void;
}) {
  const required = schema.required ?? [];
  const names = Object.keys(schema.properties ?? {}).sort((a, b) => Number(required.includes(b)) - Number(required.includes(a)));
  return (
    <>
      {names.map((name) => (
        <SchemaField
          key={name}
          schema={(schema.properties ?? {})[name] as JsonSchema}
          name={name}
          path={pathOf(path, name)}
          value={value[name]}
          required={required.includes(name)}
          errors={errors}
          onChange={(v) => onChange({ ...value, [name]: v })}
        />
      ))}
    </>
  );
}
