import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type KindInfo, type Keyring, type Models, providerEnvironment, resolveCredential, secretFragments } from '@pds/shared';

/** What a job gets from its credential: environment for Pulumi, settings for the program, and a masker. */
export interface JobCredential {
  credentialId?: string;
  env: Record<string, string>;
  /** Non-secret provider settings, for STACK_INPUT_YAML. */
  settings: Record<string, string>;
  /** Replaces every secret value in a text with `[secret]`. */
  mask(text: string): string;
  /** Removes the credential files. */
  dispose(): Promise<void>;
}

const NONE: JobCredential = { env: {}, settings: {}, mask: (text) => text, dispose: async () => undefined };

/** Masks every fragment in one pass (longest first, so a value is not half-masked by a shorter one). */
export function masker(fragments: string[]): (text: string) => string {
  if (fragments.length === 0) return (text) => text;
  const pattern = new RegExp(fragments.map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  return (text) => text.replace(pattern, '[secret]');
}

/**
 * Resolves the credential for a kind's provider (the resource's label, else the default), opens it
 * in memory, and writes the files the provider reads (0600, in a 0700 folder of `dir`'s own).
 * Kinds whose provider is `none` get nothing. Throws CredentialUnavailableError when there is none.
 */
export async function prepareJobCredential(
  deps: { models: Pick<Models, 'Credential'>; keyring?: Keyring },
  kind: Pick<KindInfo, 'provider'>,
  labels: { key: string; value: string }[],
  dir: string,
): Promise<JobCredential> {
  if (kind.provider === 'none') return NONE;
  const credential = await resolveCredential(deps.models, deps.keyring, kind.provider, labels);
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
  return {
    credentialId: credential.id,
    env,
    settings: credential.settings,
    mask: masker(secretFragments(credential.secrets, credential.settings)),
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}
