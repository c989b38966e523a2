import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { LruCache } from './lru.js';
import type { ApiTokenDoc } from './models/api-token.js';
import type { Models } from './models/index.js';
import { DEFAULT_TENANT } from './tenancy.js';
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
  /** The tenant it acts in; absent for the `platform` role, which acts across tenants. */
  tenant?: string;
  /** The identity it acts for (ApiToken `actsFor`; its own id when absent). */
  actsFor?: string;
  /**
   * A token issued before tokens recorded whom they act for, by someone other than ADMIN_TOKEN: it
   * may be a second token of its issuer, so it is no approver where self-approval is not allowed.
   */
  identityUnknown?: true;
}

/** Who a principal is, for rules about people (self-approval, one decision each): the identity it acts for. */
export function identityOf(principal: Pick<Principal, 'id' | 'actsFor'>): string {
  return principal.actsFor ?? principal.id;
}

/**
 * The identity a new token acts for: one a platform admin issues is a new identity (its own id);
 * one a tenant's admin issues acts for that admin, so minting a token never makes a second person.
 */
function issuedIdentity(issuer: Principal, newTokenId: string): string {
  return issuer.role === 'platform' ? newTokenId : identityOf(issuer);
}

/** ADMIN_TOKEN: a platform admin. */
export const BOOTSTRAP_PRINCIPAL: Principal = { id: 'admin-token', name: 'ADMIN_TOKEN', role: 'platform' };

/** The principal a stored token stands for (tokens of versions without tenants are in the default tenant). */
/** What a principal is made of (`actsFor`, `createdBy`: absent on tokens of earlier versions). */
type StoredTokenFields = Pick<ApiTokenDoc, 'id' | 'name' | 'role' | 'tenantId'> & Partial<Pick<ApiTokenDoc, 'actsFor' | 'createdBy'>>;

export function tokenPrincipal(doc: StoredTokenFields): Principal {
  const role = doc.role as Role;
  const actsFor =
    doc.actsFor && doc.actsFor !== doc.id
      ? { actsFor: doc.actsFor }
      : !doc.actsFor && doc.createdBy !== BOOTSTRAP_PRINCIPAL.name
        ? { identityUnknown: true as const }
        : {};
  return role === 'platform'
    ? { id: doc.id, name: doc.name, role, ...actsFor }
    : { id: doc.id, name: doc.name, role, tenant: doc.tenantId ?? DEFAULT_TENANT, ...actsFor };
}

/** Whether `role` may do what `needed` may. */
export function roleAllows(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

/** A principal and the hash of the token it presented, so that a long-lived socket can check it again. */
export type AuthOutcome = { ok: true; principal: Principal; tokenHash: string } | { ok: false; message: string };

/** What an issued token looks like: `pds_` and 256 bits in base64url. Anything else is refused before any lookup. */
export const TOKEN_FORMAT = /^pds_[A-Za-z0-9_-]{43}$/;

export interface AuthenticatorOptions {
  /** The bootstrap admin token; a service without one (the runner) accepts only issued tokens. */
  adminToken?: string;
  /** Reads a stored token by its hash. */
  findToken(hash: string): Promise<(StoredTokenFields & Pick<ApiTokenDoc, 'expiresAt' | 'revokedAt'>) | null>;
  /** How long a looked-up token is trusted without asking the store again (default 5 s). */
  cacheMs?: number;
  /** How many known tokens are remembered (default 10,000); unknown ones have a cache of their own. */
  cacheEntries?: number;
  now?: () => number;
}

const NOT_VALID: AuthOutcome = { ok: false, message: 'the bearer token is not valid' };

/**
 * Turns a bearer token into a principal. ADMIN_TOKEN is compared in constant time; other tokens
 * must have the issued format, then are looked up by hash and remembered for `cacheMs`, so a
 * revocation reaches every process within that time. Tokens found and tokens not found are kept in
 * separate bounded LRUs: a spray of random tokens churns only the second and never evicts a good one.
 */
export function createAuthenticator({
  adminToken,
  findToken,
  cacheMs = 5_000,
  cacheEntries = 10_000,
  now = Date.now,
}: AuthenticatorOptions) {
  type Entry = { outcome: AuthOutcome; until: number };
  const known = new LruCache<string, Entry>(cacheEntries);
  const unknown = new LruCache<string, Entry>(Math.max(1, Math.floor(cacheEntries / 10)));
  const adminHash = adminToken === undefined ? undefined : digest(adminToken);

  async function lookUp(hash: string): Promise<AuthOutcome> {
    const doc = await findToken(hash);
    if (!doc) return NOT_VALID;
    if (doc.revokedAt) return { ok: false, message: `token ${doc.id} (${doc.name}) has been revoked` };
    if (doc.expiresAt && doc.expiresAt.getTime() <= now()) return { ok: false, message: `token ${doc.id} (${doc.name}) has expired` };
    return { ok: true, principal: tokenPrincipal(doc), tokenHash: hash };
  }

  /** The principal of a token known by its hash (a stream ticket carries the hash, never the token). */
  async function byHash(hash: string): Promise<AuthOutcome> {
    if (adminHash && /^[0-9a-f]{64}$/.test(hash) && timingSafeEqual(Buffer.from(hash, 'hex'), adminHash)) {
      return { ok: true, principal: BOOTSTRAP_PRINCIPAL, tokenHash: hash };
    }
    const hit = known.get(hash) ?? unknown.get(hash);
    if (hit && hit.until > now()) return hit.outcome;
    const outcome = await lookUp(hash);
    (outcome.ok ? known : unknown).set(hash, { outcome, until: now() + cacheMs });
    if (outcome.ok) unknown.delete(hash);
    else known.delete(hash);
    return outcome;
  }

  return {
    async authenticate(token: string | undefined): Promise<AuthOutcome> {
      if (token === undefined) return { ok: false, message: 'missing Authorization: Bearer <token> header' };
      if (adminToken !== undefined && tokenMatches(token, adminToken)) {
        return { ok: true, principal: BOOTSTRAP_PRINCIPAL, tokenHash: hashToken(token) };
      }
      if (!TOKEN_FORMAT.test(token)) return NOT_VALID;
      return byHash(hashToken(token));
    },
    byHash,
    /** Forgets a token at once in this process (after a revocation here). */
    forget(hash?: string) {
      if (hash) {
        known.delete(hash);
        unknown.delete(hash);
      } else {
        known.clear();
        unknown.clear();
      }
    },
    /** How long an answer is trusted: the longest a revoked token may still be accepted here. */
    cacheMs,
  };
}

export type Authenticator = ReturnType<typeof createAuthenticator>;

/** The authenticator every service uses: ADMIN_TOKEN (where the service has it), and the tokens stored in MongoDB. */
export function tokenAuthenticator(models: Pick<Models, 'ApiToken'>, adminToken: string | undefined, cacheMs?: number): Authenticator {
  return createAuthenticator({ adminToken, cacheMs, findToken: (hash) => models.ApiToken.findById(hash).lean<ApiTokenDoc>() });
}

/**
 * Stores a new token with a role and returns it with its secret (the only time the secret exists
 * outside its holder). A tenant role's token is in `tenantId` (default: the default tenant); a
 * `platform` token is in none. `revokedAt` and `expiresAt` as given.
 */
export async function storeApiToken(
  models: Pick<Models, 'ApiToken'>,
  fields: { name: string; role: Role; tenantId?: string; createdBy: string; expiresAt?: Date; revokedAt?: Date },
  issuer?: Principal,
): Promise<{ token: string; doc: ApiTokenDoc }> {
  const { token, hash, id, prefix } = generateToken();
  const tenantId = fields.role === 'platform' ? undefined : (fields.tenantId ?? DEFAULT_TENANT);
  const actsFor = issuer ? issuedIdentity(issuer, id) : id;
  const doc = await models.ApiToken.create({ _id: hash, id, prefix, ...fields, tenantId, actsFor });
  return { token, doc: doc.toObject() as unknown as ApiTokenDoc };
}
