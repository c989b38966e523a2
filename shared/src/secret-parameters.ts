import { parseDocument } from 'yaml';
import { errors } from './errors.js';
import type { Manifest } from './manifest.js';
import { SECRET_PLACEHOLDER } from './parameters.js';
import type { Keyring, SealedSecret } from './secret-box.js';

export interface SealedParameter {
  key: string;
  sealed: SealedSecret;
}

/** What a secret parameter is sealed under: its resource and its key (a sealed value copied elsewhere does not open). */
const sealedFor = (resourceId: string, key: string) => `${resourceId}:spec.${key}`;

/**
 * Takes a manifest's secret parameters out of it: each given value is sealed, and the text that is
 * stored says `[secret]` in its place. A value sent back as `[secret]` keeps the one stored before
 * (`previous`); one that was never given is refused. Returns the text to store, the sealed values,
 * and the spec with every secret in clear (for validation only; never stored).
 */
export function sealSecretParameters(
  keys: string[],
  manifestText: string,
  manifest: Manifest,
  { keyring, resourceId, previous = [] }: { keyring: Keyring | undefined; resourceId: string; previous?: SealedParameter[] },
): { text: string; sealed: SealedParameter[]; clearSpec: Record<string, unknown> } {
  if (keys.length === 0) return { text: manifestText, sealed: [], clearSpec: manifest.spec };
  if (!keyring) throw errors.unavailable('this template has secret parameters, and CREDENTIALS_KEY is not set: they cannot be stored');
  const doc = parseDocument(manifestText);
  const clearSpec = { ...manifest.spec };
  const sealed: SealedParameter[] = [];
  for (const key of keys) {
    const value = manifest.spec[key];
    if (value === undefined) continue;
    if (value === SECRET_PLACEHOLDER) {
      const kept = previous.find((p) => p.key === key);
      if (!kept)
        throw errors.invalidManifest(`spec.${key}: "${SECRET_PLACEHOLDER}" keeps a stored secret, and there is none; give the value`);
      clearSpec[key] = keyring.open(kept.sealed, sealedFor(resourceId, key));
      sealed.push(kept);
      continue;
    }
    if (typeof value === 'string') sealed.push({ key, sealed: keyring.seal(value, sealedFor(resourceId, key)) });
    doc.setIn(['spec', key], SECRET_PLACEHOLDER);
  }
  return { text: doc.toString(), sealed, clearSpec };
}

/** Opens a resource's secret parameters for one job (in memory only). */
export function openSecretParameters(
  keyring: Keyring | undefined,
  resourceId: string,
  sealed: SealedParameter[] | undefined,
): Record<string, string> {
  if (!sealed || sealed.length === 0) return {};
  if (!keyring) throw new Error('CREDENTIALS_KEY is not set on the runner, so secret parameters cannot be opened');
  return Object.fromEntries(sealed.map((p) => [p.key, keyring.open(p.sealed, sealedFor(resourceId, p.key))]));
}
