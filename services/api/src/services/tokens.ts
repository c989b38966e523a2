import { type ApiTokenDoc, type Authenticator, errors, storeApiToken, type Models, type Principal, type Role } from '@pds/shared';

export interface TokenServiceDeps {
  models: Pick<Models, 'ApiToken'>;
  authenticator: Pick<Authenticator, 'forget'>;
}

/** A token as lists show it: never the token itself, only its prefix. */
export function tokenView(doc: ApiTokenDoc) {
  return {
    id: doc.id,
    name: doc.name,
    role: doc.role as Role,
    prefix: doc.prefix,
    createdBy: doc.createdBy,
    createdAt: doc.createdAt.toISOString(),
    ...(doc.expiresAt ? { expiresAt: doc.expiresAt.toISOString() } : {}),
    ...(doc.revokedAt ? { revokedAt: doc.revokedAt.toISOString() } : {}),
  };
}

/** Issuing, listing and revoking API tokens; only hashes are stored. */
export function tokenService({ models, authenticator }: TokenServiceDeps) {
  return {
    /** Issues a token; the response is the only time the token is ever shown. */
    async create(input: { name: string; role: Role; expiresInDays?: number }, by: Principal) {
      const expiresAt = input.expiresInDays ? new Date(Date.now() + input.expiresInDays * 86_400_000) : undefined;
      const { token, doc } = await storeApiToken(models, { name: input.name, role: input.role, createdBy: by.name, expiresAt });
      return { ...tokenView(doc), token };
    },

    async list() {
      const docs = await models.ApiToken.find({}).sort({ createdAt: -1 }).lean<ApiTokenDoc[]>();
      return docs.map(tokenView);
    },

    /** Revokes at once in this process; other processes stop accepting it within their cache time (5 s). */
    async revoke(id: string) {
      const doc = await models.ApiToken.findOneAndUpdate(
        { id },
        { $set: { revokedAt: new Date() } },
        { returnDocument: 'after' },
      ).lean<ApiTokenDoc>();
      if (!doc) throw errors.notFound(`token ${id} not found`);
      authenticator.forget(doc._id);
      return tokenView(doc);
    },
  };
}
