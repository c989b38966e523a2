import { randomUUID } from 'node:crypto';
import { checkCredentialFields, type CredentialDoc, errors, type Keyring, type Models, sealSecrets } from '@pds/shared';
import { readPage } from './pagination.js';

export interface CredentialServiceDeps {
  models: Pick<Models, 'Credential' | 'StackJob'>;
  /** Undefined when CREDENTIALS_KEY is not set: credentials cannot be stored. */
  keyring?: Keyring;
}

export interface CredentialInput {
  name: string;
  provider: string;
  isDefault?: boolean;
  labels?: Record<string, string>;
  [field: string]: unknown;
}

const toPairs = (labels: Record<string, string>) => Object.entries(labels).map(([key, value]) => ({ key, value }));

/** A credential as responses show it: never a secret value, only non-secret settings and a fingerprint. */
export function credentialView(doc: CredentialDoc) {
  return {
    id: doc._id,
    name: doc.name,
    provider: doc.provider,
    isDefault: doc.isDefault,
    labels: Object.fromEntries(doc.labels.map((l) => [l.key, l.value])),
    settings: doc.settings ?? {},
    fingerprint: doc.fingerprint,
    keyId: doc.sealed.keyId,
    createdAt: doc.createdAt.toISOString(),
    updatedAt: doc.updatedAt.toISOString(),
    ...(doc.rotatedAt ? { rotatedAt: doc.rotatedAt.toISOString() } : {}),
  };
}

/** Storing, rotating and deleting provider credentials; secrets are sealed before they reach MongoDB. */
export function credentialService({ models, keyring }: CredentialServiceDeps) {
  function requireKeyring(): Keyring {
    if (!keyring)
      throw errors.unavailable('credentials are disabled: set CREDENTIALS_KEY (32 random bytes, base64: openssl rand -base64 32)');
    return keyring;
  }

  async function find(id: string) {
    const doc = await models.Credential.findById(id).lean<CredentialDoc>();
    if (!doc) throw errors.notFound(`credential ${id} not found`);
    return doc;
  }

  /** One default per provider: making `id` the default takes it from the others. */
  async function takeDefault(provider: string, id: string) {
    await models.Credential.updateMany({ provider, isDefault: true, _id: { $ne: id } }, { $set: { isDefault: false } });
  }

  return {
    /** The first credential of a provider becomes its default unless `isDefault: false` is given. */
    async create({ name, provider, isDefault, labels = {}, ...fields }: CredentialInput) {
      const ring = requireKeyring();
      const { settings, secrets } = checkCredentialFields(provider, fields);
      if (await models.Credential.exists({ name })) throw errors.conflict(`a credential named "${name}" already exists`);
      const makeDefault = isDefault ?? !(await models.Credential.exists({ provider, isDefault: true }));
      const id = randomUUID();
      try {
        const doc = await models.Credential.create({
          _id: id,
          name,
          provider,
          isDefault: makeDefault,
          labels: toPairs(labels),
          settings,
          ...sealSecrets(ring, id, secrets),
        });
        if (makeDefault) await takeDefault(provider, id);
        return credentialView(doc.toObject() as unknown as CredentialDoc);
      } catch (err) {
        if ((err as { code?: number }).code === 11000) throw errors.conflict(`a credential named "${name}" already exists`);
        throw err;
      }
    },

    /** Replaces the provider fields (a rotation: new fingerprint, `rotatedAt`); name and provider stay. */
    async replace(id: string, { isDefault, labels, ...fields }: Omit<CredentialInput, 'name' | 'provider'>) {
      const ring = requireKeyring();
      const current = await find(id);
      const { settings, secrets } = checkCredentialFields(current.provider, fields);
      const doc = await models.Credential.findOneAndUpdate(
        { _id: id },
        {
          $set: {
            settings,
            ...sealSecrets(ring, id, secrets),
            rotatedAt: new Date(),
            ...(isDefault !== undefined ? { isDefault } : {}),
            ...(labels ? { labels: toPairs(labels as Record<string, string>) } : {}),
          },
        },
        { returnDocument: 'after' },
      ).lean<CredentialDoc>();
      if (!doc) throw errors.notFound(`credential ${id} not found`);
      if (isDefault) await takeDefault(doc.provider, id);
      return credentialView(doc);
    },

    async get(id: string) {
      return credentialView(await find(id));
    },

    async list({ provider, limit, cursor }: { provider?: string; limit: number; cursor?: string }) {
      return readPage(
        (condition, n) =>
          models.Credential.find({ ...(provider ? { provider } : {}), ...condition })
            .sort({ createdAt: -1, _id: -1 })
            .limit(n)
            .lean<CredentialDoc[]>(),
        { field: 'createdAt', limit, cursor },
        credentialView,
      );
    },

    /** Refused while a running job uses the credential: its secrets are in that job's environment. */
    async remove(id: string) {
      const doc = await find(id);
      const running = await models.StackJob.findOne({ credentialId: id, status: 'running' }, { _id: 1 }).lean<{ _id: string }>();
      if (running) throw errors.conflict(`credential ${doc.name} is in use by running job ${running._id}; delete it after the job ends`);
      await models.Credential.deleteOne({ _id: id });
      return credentialView(doc);
    },
  };
}
