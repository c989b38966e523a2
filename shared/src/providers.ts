import { createHash } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { errors } from './errors.js';

/** One field of a provider's credential. */
export interface CredentialField {
  secret: boolean;
  required: boolean;
  description: string;
}

/** What Pulumi gets from a credential: environment variables, and files (0600) whose paths go in variables. */
export interface ProviderEnvironment {
  env: Record<string, string>;
  files: { name: string; content: string; pathVariables: string[] }[];
}

export interface ProviderSpec {
  fields: Record<string, CredentialField>;
  /** Checks the fields beyond presence (formats, parsable documents); may derive settings. Throws a 400 naming the field. */
  check(values: Record<string, string>): Record<string, string>;
  environment(values: Record<string, string>): ProviderEnvironment;
}

const invalid = (field: string, why: string) => errors.invalidRequest(`${field}: ${why}`);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const field = (description: string, secret = false, required = true): CredentialField => ({ secret, required, description });

/** A GCP service-account key, given as JSON or as base64 of the JSON. */
function parseGcpKey(text: string): Record<string, unknown> {
  const trimmed = text.trim();
  const json = trimmed.startsWith('{') ? trimmed : Buffer.from(trimmed, 'base64').toString('utf8');
  let key: unknown;
  try {
    key = JSON.parse(json);
  } catch {
    throw invalid('serviceAccountKey', 'is not a service-account key: expected its JSON, or base64 of the JSON');
  }
  if (typeof key !== 'object' || key === null) throw invalid('serviceAccountKey', 'must be a JSON object');
  const k = key as Record<string, unknown>;
  if (k.type !== 'service_account')
    throw invalid('serviceAccountKey', `"type" must be "service_account" (it is ${JSON.stringify(k.type)})`);
  for (const name of ['project_id', 'private_key', 'client_email']) {
    if (typeof k[name] !== 'string' || k[name] === '') throw invalid('serviceAccountKey', `the key JSON has no "${name}"`);
  }
  if (!String(k.private_key).includes('PRIVATE KEY')) throw invalid('serviceAccountKey', '"private_key" is not a PEM private key');
  return k;
}

/** Every provider a credential can be for; kinds name one of these in module.yaml. */
export const PROVIDERS: Record<string, ProviderSpec> = {
  gcp: {
    fields: {
      serviceAccountKey: field('Service-account key JSON, plain or base64', true),
      projectId: field('Project to deploy into (default: the key\u2019s project_id)', false, false),
    },
    check(values) {
      const key = parseGcpKey(values.serviceAccountKey!);
      return {
        serviceAccountKey: JSON.stringify(key),
        projectId: values.projectId ?? String(key.project_id),
        clientEmail: String(key.client_email),
      };
    },
    environment: (v) => ({
      env: { GOOGLE_PROJECT: v.projectId!, GOOGLE_CLOUD_PROJECT: v.projectId! },
      files: [
        { name: 'gcp-key.json', content: v.serviceAccountKey!, pathVariables: ['GOOGLE_APPLICATION_CREDENTIALS', 'GOOGLE_CREDENTIALS'] },
      ],
    }),
  },
  aws: {
    fields: {
      accountId: field('12-digit AWS account id'),
      accessKeyId: field('Access key id (AKIA…/ASIA…)'),
      secretAccessKey: field('Secret access key', true),
      sessionToken: field('Session token, for temporary credentials', true, false),
      region: field('Default region, e.g. eu-west-1', false, false),
    },
    check(v) {
      if (!/^\d{12}$/.test(v.accountId!)) throw invalid('accountId', 'must be 12 digits');
      if (!/^(AKIA|ASIA|AIDA|AROA)[A-Z0-9]{12,124}$/.test(v.accessKeyId!))
        throw invalid('accessKeyId', 'must look like AKIA… or ASIA… (upper-case letters and digits)');
      if (v.secretAccessKey!.length < 16) throw invalid('secretAccessKey', 'is too short to be a secret access key');
      if (v.region !== undefined && !/^[a-z]{2}(-[a-z]+)+-\d$/.test(v.region))
        throw invalid('region', `"${v.region}" is not an AWS region name`);
      return v;
    },
    environment: (v) => ({
      env: {
        AWS_ACCESS_KEY_ID: v.accessKeyId!,
        AWS_SECRET_ACCESS_KEY: v.secretAccessKey!,
        ...(v.sessionToken ? { AWS_SESSION_TOKEN: v.sessionToken } : {}),
        ...(v.region ? { AWS_REGION: v.region, AWS_DEFAULT_REGION: v.region } : {}),
      },
      files: [],
    }),
  },
  azure: {
    fields: {
      clientId: field('Service principal application (client) id, a UUID'),
      clientSecret: field('Service principal secret', true),
      tenantId: field('Tenant id, a UUID'),
      subscriptionId: field('Subscription id, a UUID'),
    },
    check(v) {
      for (const name of ['clientId', 'tenantId', 'subscriptionId']) if (!UUID.test(v[name]!)) throw invalid(name, 'must be a UUID');
      return v;
    },
    environment: (v) => ({
      env: {
        ARM_CLIENT_ID: v.clientId!,
        ARM_CLIENT_SECRET: v.clientSecret!,
        ARM_TENANT_ID: v.tenantId!,
        ARM_SUBSCRIPTION_ID: v.subscriptionId!,
      },
      files: [],
    }),
  },
  kubernetes: {
    fields: { kubeconfig: field('A kubeconfig (YAML) with at least one cluster and a current context', true) },
    check(v) {
      let doc: Record<string, unknown>;
      try {
        doc = parseYaml(v.kubeconfig!) as Record<string, unknown>;
      } catch (err) {
        throw invalid('kubeconfig', `is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
      }
      const clusters = doc?.clusters as { name?: string; cluster?: { server?: string } }[] | undefined;
      if (!Array.isArray(clusters) || clusters.length === 0) throw invalid('kubeconfig', 'has no clusters');
      const context = doc['current-context'];
      if (typeof context !== 'string' || context === '') throw invalid('kubeconfig', 'has no current-context');
      return { kubeconfig: v.kubeconfig!, context, server: String(clusters[0]?.cluster?.server ?? '') };
    },
    environment: (v) => ({ env: {}, files: [{ name: 'kubeconfig', content: v.kubeconfig!, pathVariables: ['KUBECONFIG'] }] }),
  },
  cloudflare: {
    fields: {
      apiToken: field('API token', true),
      accountId: field('Account id (32 hex characters)', false, false),
    },
    check(v) {
      if (!/^[A-Za-z0-9_-]{20,}$/.test(v.apiToken!)) throw invalid('apiToken', 'must be at least 20 letters, digits, - or _');
      if (v.accountId !== undefined && !/^[0-9a-f]{32}$/.test(v.accountId))
        throw invalid('accountId', 'must be 32 lower-case hex characters');
      return v;
    },
    environment: (v) => ({
      env: { CLOUDFLARE_API_TOKEN: v.apiToken!, ...(v.accountId ? { CLOUDFLARE_ACCOUNT_ID: v.accountId } : {}) },
      files: [],
    }),
  },
};

export const PROVIDER_NAMES = Object.keys(PROVIDERS);

/** Every field name any provider takes (the union the API's body schema allows). */
export const CREDENTIAL_FIELDS: Record<string, { description: string; providers: string[] }> = {};
for (const [provider, spec] of Object.entries(PROVIDERS)) {
  for (const [name, f] of Object.entries(spec.fields)) {
    const entry = (CREDENTIAL_FIELDS[name] ??= { description: f.description, providers: [] });
    entry.providers.push(provider);
  }
}

export interface CheckedCredential {
  /** Non-secret values: shown in responses, given to programs as settings. */
  settings: Record<string, string>;
  /** Secret values: sealed at rest, only in memory otherwise. */
  secrets: Record<string, string>;
}

/**
 * Validates a credential's fields for its provider (required, unknown, format) with a message
 * naming the field, and splits them into settings and secrets.
 */
export function checkCredentialFields(provider: string, input: Record<string, unknown>): CheckedCredential {
  const spec = PROVIDERS[provider];
  if (!spec) throw invalid('provider', `"${provider}" is unknown; known providers: ${PROVIDER_NAMES.join(', ')}`);
  const values: Record<string, string> = {};
  for (const [name, value] of Object.entries(input)) {
    if (value === undefined) continue;
    if (!spec.fields[name])
      throw invalid(name, `is not a field of ${provider} credentials (fields: ${Object.keys(spec.fields).join(', ')})`);
    if (typeof value !== 'string' || value.trim() === '') throw invalid(name, 'must be a non-empty string');
    if (spec.fields[name]?.secret && value.trim().length < MIN_SECRET_LENGTH) {
      throw invalid(name, `must be at least ${MIN_SECRET_LENGTH} characters: a shorter secret could not be masked in a job's output`);
    }
    values[name] = value;
  }
  for (const [name, f] of Object.entries(spec.fields)) {
    if (f.required && values[name] === undefined) throw invalid(name, `is required for ${provider} credentials`);
  }
  const checked = spec.check(values);
  const settings: Record<string, string> = {};
  const secrets: Record<string, string> = {};
  for (const [name, value] of Object.entries(checked)) (spec.fields[name]?.secret ? secrets : settings)[name] = value;
  return { settings, secrets };
}

/** A short, stable fingerprint of a credential's secret values (not reversible; tells rotations apart). */
export function credentialFingerprint(secrets: Record<string, string>): string {
  const canonical = JSON.stringify(
    Object.keys(secrets)
      .sort()
      .map((k) => [k, secrets[k]]),
  );
  return `sha256:${createHash('sha256').update(canonical).digest('hex').slice(0, 16)}`;
}

/** The environment Pulumi gets for a resolved credential. */
export function providerEnvironment(provider: string, credential: CheckedCredential): ProviderEnvironment {
  const spec = PROVIDERS[provider];
  if (!spec) throw new Error(`unknown provider ${provider}`);
  return spec.environment({ ...credential.settings, ...credential.secrets });
}

/** The shortest secret a credential may hold: anything shorter cannot be told from ordinary output, so it could not be masked. */
export const MIN_SECRET_LENGTH = 8;

/** Fragments shorter than this are not masked on their own (they would match ordinary text). */
const MIN_FRAGMENT = 6;

/** Keys under which a structured credential (a service-account key, a kubeconfig) keeps its secrets. */
const SECRET_KEY = /(private|secret|token|password|passphrase|credential|[-_]data$|key$|key_id$)/i;
const NOT_SECRET_KEY = /(uri|url)$/i;

/** A credential value that is a document (JSON, or a YAML mapping such as a kubeconfig), or undefined. */
function structured(value: string): unknown {
  const text = value.trim();
  try {
    if (text.startsWith('{')) return JSON.parse(text);
    if (/^[\w"'-][^\n]*:/.test(text) && text.includes('\n')) {
      const doc = parseYaml(text);
      return doc && typeof doc === 'object' ? doc : undefined;
    }
  } catch {
    // not a document: masked as text
  }
  return undefined;
}

/**
 * Every fragment of a credential's secrets that must never appear in a job's output: each secret
 * value and its lines; for a document (a service-account key, a kubeconfig) the values under secret
 * keys (tokens, passwords, private keys, `*-data`) rather than every line of it, so that ordinary
 * lines such as `users:` stay readable; and the base64, JSON-escaped, URL-encoded and hex forms of
 * each. Values that are also settings (a GCP key's project id) are not secrets.
 */
export function secretFragments(secrets: Record<string, string>, settings: Record<string, string> = {}): string[] {
  const found = new Set<string>();
  const addText = (value: string) => {
    for (const candidate of [value, ...value.split(/\r?\n/), ...value.split(/\\n/)]) {
      const trimmed = candidate.trim();
      if (trimmed.length >= MIN_FRAGMENT) found.add(trimmed);
    }
  };
  const walk = (value: unknown, secret: boolean) => {
    if (typeof value === 'string') {
      if (secret) addText(value);
    } else if (value && typeof value === 'object') {
      for (const [key, inner] of Object.entries(value)) walk(inner, secret || (SECRET_KEY.test(key) && !NOT_SECRET_KEY.test(key)));
    }
  };
  for (const value of Object.values(secrets)) {
    const doc = structured(value);
    if (doc === undefined) addText(value);
    else {
      if (value.trim().length >= MIN_FRAGMENT) found.add(value.trim());
      walk(doc, false);
    }
    found.add(Buffer.from(value).toString('base64'));
  }
  for (const fragment of [...found]) {
    const encoded = [
      JSON.stringify(fragment).slice(1, -1),
      encodeURIComponent(fragment),
      Buffer.from(fragment).toString('hex'),
      Buffer.from(fragment).toString('base64'),
    ];
    for (const form of encoded) if (form !== fragment) found.add(form);
  }
  for (const value of Object.values(settings)) found.delete(value);
  return [...found].sort((a, b) => b.length - a.length);
}
