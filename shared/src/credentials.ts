import { createHash } from 'node:crypto';
import type { CredentialDoc } from './models/credential.js';
import type { Models } from './models/index.js';
import { type CheckedCredential, credentialFingerprint } from './providers.js';
import type { Keyring } from './secret-box.js';
import { tenantOf } from './tenancy.js';

/** A resource label naming the credential to use instead of its provider's default. */
export const CREDENTIAL_LABEL = 'deploy.pulumi.dev/credential';

/** A credential opened for one job: in memory only. */
export interface ResolvedCredential extends CheckedCredential {
  id: string;
  name: string;
  provider: string;
  /** Which credential, as it is now (credentialRevision). */
  revision: string;
}

/**
 * Which credential, as it is: its id, the fingerprint of its secret values (a rotation changes it)
 * and a hash of its settings (a project, a region). A run approved with one revision is not applied
 * with another (approvals' staleness). Holds no secret, but is kept on the job and never shown:
 * the fingerprint is an unsalted hash of the secret values, which only admins see.
 */
export function credentialRevision(doc: Pick<CredentialDoc, '_id' | 'fingerprint' | 'settings'>): string {
  const sorted = Object.fromEntries(Object.entries(doc.settings ?? {}).sort(([a], [b]) => a.localeCompare(b)));
  const settings = createHash('sha256').update(JSON.stringify(sorted)).digest('hex').slice(0, 16);
  return `${doc._id}:${doc.fingerprint}:${settings}`;
}

/** Seals a credential's secret values under its id. */
export function sealSecrets(keyring: Keyring, id: string, secrets: Record<string, string>) {
  return { sealed: keyring.seal(JSON.stringify(secrets), id), fingerprint: credentialFingerprint(secrets) };
}

export function openSecrets(keyring: Keyring, doc: Pick<CredentialDoc, '_id' | 'sealed'>): Record<string, string> {
  return JSON.parse(keyring.open(doc.sealed, doc._id)) as Record<string, string>;
}

/** Raised when a job's provider has no usable credential; the message says how to add one. */
export class CredentialUnavailableError extends Error {
  override name = 'CredentialUnavailableError';
}

/**
 * The credential a resource of a `provider` kind runs with, among those its tenant may use (its own,
 * then the platform credentials shared with it): the one its `deploy.pulumi.dev/credential` label
 * names, else the provider's default (the most recently changed, should two claim it).
 */
export async function resolveCredential(
  models: Pick<Models, 'Credential'>,
  keyring: Keyring | undefined,
  provider: string,
  resource: { tenantId?: string; labels?: { key: string; value: string }[] },
  /** Whether platform credentials shared with the tenant may be used (not by a tenant's own uploaded program). */
  { shared = true }: { shared?: boolean } = {},
): Promise<ResolvedCredential> {
  const doc = await findCredential(models, provider, resource, { shared });
  if (!keyring) throw new CredentialUnavailableError('CREDENTIALS_KEY is not set on the runner, so credentials cannot be opened');
  const secrets = openSecrets(keyring, doc);
  return { id: doc._id, name: doc.name, provider, settings: doc.settings ?? {}, secrets, revision: credentialRevision(doc) };
}

/** The credential resolveCredential would open, without opening it; CredentialUnavailableError when there is none. */
export async function findCredential(
  models: Pick<Models, 'Credential'>,
  provider: string,
  resource: { tenantId?: string; labels?: { key: string; value: string }[] },
  { shared = true }: { shared?: boolean } = {},
): Promise<CredentialDoc> {
  const tenant = tenantOf(resource);
  const named = resource.labels?.find((l) => l.key === CREDENTIAL_LABEL)?.value;
  const which = named ? { name: named } : { provider, isDefault: true };
  const find = (owner: Record<string, unknown>) =>
    models.Credential.findOne({ ...owner, ...which })
      .sort({ updatedAt: -1 })
      .lean<CredentialDoc>();
  // The tenant's own first: a tenant's credential of a name (or its default) wins over a shared one.
  const doc = (await find({ tenantId: tenant })) ?? (shared ? await find({ platform: true, sharedWith: tenant }) : null);
  const howTo = `a tenant admin adds one with POST /v1/credentials {"name": "...", "provider": "${provider}", "isDefault": true, ...}`;
  if (!doc) {
    throw new CredentialUnavailableError(
      named
        ? `the resource's label ${CREDENTIAL_LABEL} names credential "${named}", which tenant ${tenant} does not have (neither its own nor shared with it); ${howTo}`
        : `tenant ${tenant} has no default ${provider} credential (${shared ? 'neither its own nor shared with it' : "of its own; a tenant's uploaded template does not get the platform's shared credentials"}); ${howTo}`,
    );
  }
  if (doc.provider !== provider) {
    throw new CredentialUnavailableError(`credential "${doc.name}" is for ${doc.provider}, but this kind needs a ${provider} credential`);
  }
  return doc;
}

/**
 * Re-seals every credential not sealed with the active key (after CREDENTIALS_KEY changed and the
 * old key moved to CREDENTIALS_KEY_PREVIOUS). Safe to run again: already re-sealed ones are skipped.
 */
export async function resealCredentials(models: Pick<Models, 'Credential'>, keyring: Keyring) {
  const stale = await models.Credential.find({ 'sealed.keyId': { $ne: keyring.active.id } }).lean<CredentialDoc[]>();
  for (const doc of stale) {
    const secrets = openSecrets(keyring, doc);
    await models.Credential.updateOne(
      { _id: doc._id, 'sealed.keyId': doc.sealed.keyId },
      { $set: { sealed: keyring.seal(JSON.stringify(secrets), doc._id) } },
    );
  }
  return { resealed: stale.length, keyId: keyring.active.id };
}
