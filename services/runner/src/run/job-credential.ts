import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Identity, ownFolder } from '../isolation/ownership.js';
import {
  credentialRevision,
  CredentialUnavailableError,
  findCredential,
  type KindInfo,
  type Keyring,
  type Models,
  PLATFORM_SCOPE,
  providerEnvironment,
  resolveCredential,
  secretFragments,
} from '@pds/shared';

/** What a job gets from its credential: environment for Pulumi, settings for the program, and a masker. */
export interface JobCredential {
  credentialId?: string;
  /** Which credential, as it was opened (credentialRevision): an approved run must find the same. */
  used?: CredentialUsed;
  env: Record<string, string>;
  /** Non-secret provider settings, for STACK_INPUT_YAML. */
  settings: Record<string, string>;
  /** Replaces every secret value in a text with `[secret]`. */
  mask(text: string): string;
  /** The secret fragments `mask` replaces (to build one masker with other secrets). */
  fragments: string[];
  /** Removes the credential files. */
  dispose(): Promise<void>;
}

/** The credential a run used: its name (for people) and its revision (to compare). */
export interface CredentialUsed {
  name: string;
  revision: string;
}

const NONE: JobCredential = { env: {}, settings: {}, mask: (text) => text, fragments: [], dispose: async () => undefined };

/** How much of a secret split across two lines must show on a line for that part to be masked. */
const SPLIT_MIN = 8;

/**
 * Masks every fragment in one pass (longest first, so a value is not half-masked by a shorter one),
 * and a secret split across two lines: a line that ends with the start of one (8 characters or
 * more) or starts with its end has that part masked. Lines are not held back to look ahead, so at
 * most 7 characters of a split secret can show on either side.
 */
export function masker(fragments: string[]): (text: string) => string {
  if (fragments.length === 0) return (text) => text;
  const pattern = new RegExp(fragments.map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  const long = fragments.filter((f) => f.length > SPLIT_MIN);
  return (text) => maskSplit(text.replace(pattern, '[secret]'), long);
}

/** Masks the start of a secret at the end of a line, and the end of one at the start of a line. */
function maskSplit(line: string, secrets: string[]): string {
  if (line.length < SPLIT_MIN) return line;
  const tail = line.slice(-SPLIT_MIN);
  const head = line.slice(0, SPLIT_MIN);
  let out = line;
  for (const secret of secrets) {
    // Cheap first: the line's last (first) 8 characters must occur in the secret at all.
    if (secret.includes(tail)) {
      for (let k = Math.min(secret.length - 1, out.length); k >= SPLIT_MIN; k--) {
        if (out.endsWith(secret.slice(0, k))) {
          out = `${out.slice(0, out.length - k)}[secret]`;
          break;
        }
      }
    }
    if (secret.includes(head)) {
      for (let k = Math.min(secret.length - 1, out.length); k >= SPLIT_MIN; k--) {
        if (out.startsWith(secret.slice(secret.length - k))) {
          out = `[secret]${out.slice(k)}`;
          break;
        }
      }
    }
  }
  return out;
}

/**
 * The credential a job of `kind` on `resource` would open now, without opening it: undefined for a
 * kind without a provider, null when there is none to open.
 */
export async function credentialNow(
  models: Pick<Models, 'Credential'>,
  kind: Pick<KindInfo, 'provider' | 'ownerScope'>,
  resource: { tenantId?: string; labels?: { key: string; value: string }[] },
): Promise<CredentialUsed | null | undefined> {
  if (kind.provider === 'none') return undefined;
  const doc = await findCredential(models, kind.provider, resource, { shared: sharesPlatformCredentials(kind) }).catch((err: Error) => {
    if (err instanceof CredentialUnavailableError) return null;
    throw err;
  });
  return doc ? { name: doc.name, revision: credentialRevision(doc) } : null;
}

/** A kind may use the platform's credentials shared with its tenant unless a tenant uploaded its program. */
function sharesPlatformCredentials(kind: Pick<KindInfo, 'ownerScope'>): boolean {
  return kind.ownerScope === undefined || kind.ownerScope === PLATFORM_SCOPE;
}

/**
 * Resolves the credential for a kind's provider (the resource's label, else the default), opens it
 * in memory, and writes the files the provider reads (0600, in a 0700 folder of `dir`'s own, owned
 * by `owner`: the job's slot uid).
 * Kinds whose provider is `none` get nothing. Throws CredentialUnavailableError when there is none.
 */
export async function prepareJobCredential(
  deps: { models: Pick<Models, 'Credential'>; keyring?: Keyring },
  kind: Pick<KindInfo, 'provider' | 'ownerScope'>,
  resource: { tenantId?: string; labels?: { key: string; value: string }[] },
  dir: string,
  owner?: Identity,
): Promise<JobCredential> {
  if (kind.provider === 'none') return NONE;
  const credential = await resolveCredential(deps.models, deps.keyring, kind.provider, resource, {
    shared: sharesPlatformCredentials(kind),
  });
  const { env, files } = providerEnvironment(kind.provider, credential);
  if (files.length > 0) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
  }
  for (const file of files) {
    const path = join(dir, file.name);
    await writeFile(path, file.content, { mode: 0o600 });
    for (const variable of file.pathVariables) env[variable] = path;
  }
  // The job's uid reads them; no other job's can.
  if (files.length > 0 && owner) await ownFolder(dir, owner);
  const fragments = secretFragments(credential.secrets, credential.settings);
  return {
    credentialId: credential.id,
    used: { name: credential.name, revision: credential.revision },
    env,
    settings: credential.settings,
    mask: masker(fragments),
    fragments,
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}
