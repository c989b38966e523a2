import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { ApiTokenDoc } from './models/api-token.js';
import type { Models } from './models/index.js';
import { ROLES, type Role } from './types.js';

/** The bearer token of an `Authorization: Bearer <token>` header, if there is one. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  return match?.[1];
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Compares tokens in constant time (hashing first makes the lengths equal). */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  return timingSafeEqual(digest(given), digest(expected));
}

/** How a token is stored: its SHA-256, hex. Tokens are 256 random bits, so no slow hash is needed. */
export function hashToken(token: string): string {
  return digest(token).toString('hex');
}

/** A new API token: the secret (shown once), its stored hash, its public id and display prefix. */
export function generateToken() {
  const token = `pds_${randomBytes(32).toString('base64url')}`;
  return { token, hash: hashToken(token), id: randomUUID(), prefix: token.slice(0, 10) };
}

/** Who is calling. */
export interface Principal {
  /** The token's public id; `admin-token` for the bootstrap ADMIN_TOKEN. */
  id: string;
  name: string;
  role: Role;
}

export const BOOTSTRAP_PRINCIPAL: Principal = { id: 'admin-token', name: 'ADMIN_TOKEN', role: 'admin' };

/** Whether `role` may do what `needed` may. */
export function roleAllows(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

export type AuthOutcome = { ok: true; principal: Principal } | { ok: false; message: string };

export interface AuthenticatorOptions {
  adminToken: string;
  /** Reads a stored token by its hash. */
  findToken(hash: string): Promise<Pick<ApiTokenDoc, 'id' | 'name' | 'role' | 'expiresAt' | 'revokedAt'> | null>;
  /** How long a looked-up token is trusted without asking the store again (default 5 s). */
  cacheMs?: number;
  now?: () => number;
}

/**
 * Turns a bearer token into a principal. ADMIN_TOKEN is compared in memory; other tokens are looked
 * up by hash and remembered for `cacheMs`, so a revocation reaches every process within that time.
 */
export function createAuthenticator({ adminToken, findToken, cacheMs = 5_000, now = Date.now }: AuthenticatorOptions) {
  const cache = new Map<string, { outcome: AuthOutcome; until: number }>();

  async function lookUp(hash: string): Promise<AuthOutcome> {
    const doc = await findToken(hash);
    if (!doc) return { ok: false, message: 'the bearer token is not valid' };
    if (doc.revokedAt) return { ok: false, message: `token ${doc.id} (${doc.name}) has been revoked` };
    if (doc.expiresAt && doc.expiresAt.getTime() <= now()) return { ok: false, message: `token ${doc.id} (${doc.name}) has expired` };
    return { ok: true, principal: { id: doc.id, name: doc.name, role: doc.role as Role } };
  }

  return {
    async authenticate(token: string | undefined): Promise<AuthOutcome> {
      if (token === undefined) return { ok: false, message: 'missing Authorization: Bearer <token> header' };
      if (tokenMatches(token, adminToken)) return { ok: true, principal: BOOTSTRAP_PRINCIPAL };
      const hash = hashToken(token);
      const hit = cache.get(hash);
      if (hit && hit.until > now()) return hit.outcome;
      const outcome = await lookUp(hash);
      if (cache.size > 10_000) cache.clear();
      cache.set(hash, { outcome, until: now() + cacheMs });
      return outcome;
    },
    /** Forgets a token at once in this process (after a revocation here). */
    forget(hash?: string) {
      if (hash) cache.delete(hash);
      else cache.clear();
    },
  };
}

export type Authenticator = ReturnType<typeof createAuthenticator>;

/** The authenticator every service uses: ADMIN_TOKEN, and the tokens stored in MongoDB. */
export function tokenAuthenticator(models: Pick<Models, 'ApiToken'>, adminToken: string): Authenticator {
  return createAuthenticator({ adminToken, findToken: (hash) => models.ApiToken.findById(hash).lean<ApiTokenDoc>() });
}

/**
 * Stores a new token with a role and returns it with its secret (the only time the secret exists
 * outside its holder). `revokedAt` and `expiresAt` as given.
 */
export async function storeApiToken(
  models: Pick<Models, 'ApiToken'>,
  fields: { name: string; role: Role; createdBy: string; expiresAt?: Date; revokedAt?: Date },
): Promise<{ token: string; doc: ApiTokenDoc }> {
  const { token, hash, id, prefix } = generateToken();
  const doc = await models.ApiToken.create({ _id: hash, id, prefix, ...fields });
  return { token, doc: doc.toObject() as unknown as ApiTokenDoc };
}
