import { stringify } from 'yaml';
import { errors } from './errors.js';
import type { Manifest } from './manifest.js';
import type { Models } from './models/index.js';
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
  const given = keys.filter((key) => manifest.spec[key] !== undefined);
  if (given.length === 0) return { text: manifestText, sealed: [], clearSpec: manifest.spec };
  if (!keyring) throw errors.unavailable(`spec.${given[0]} is a secret parameter, and CREDENTIALS_KEY is not set: it cannot be stored`);
  const clearSpec = { ...manifest.spec };
  const storedSpec = { ...manifest.spec };
  const sealed: SealedParameter[] = [];
  for (const key of given) {
    const value = manifest.spec[key];
    storedSpec[key] = SECRET_PLACEHOLDER;
    if (value === SECRET_PLACEHOLDER) {
      const kept = previous.find((p) => p.key === key);
      if (!kept)
        throw errors.invalidManifest(`spec.${key}: "${SECRET_PLACEHOLDER}" keeps a stored secret, and there is none; give the value`);
      clearSpec[key] = keyring.open(kept.sealed, sealedFor(resourceId, key));
      sealed.push(kept);
    } else if (typeof value === 'string') {
      sealed.push({ key, sealed: keyring.seal(value, sealedFor(resourceId, key)) });
    } else {
      storedSpec[key] = value; // not a string: the schema refuses it, naming the field
    }
  }
  // The text is written anew from what was parsed, not edited: comments, merge keys or any other
  // way the value could sit in the submitted text do not survive.
  const text = stringify({ apiVersion: manifest.apiVersion, kind: manifest.kind, metadata: manifest.metadata, spec: storedSpec });
  return { text, sealed, clearSpec };
}

/**
 * Re-seals every resource's secret parameters not sealed with the active key (after CREDENTIALS_KEY
 * changed, with the old key as CREDENTIALS_KEY_PREVIOUS), and their copy in the stack's last good
 * run (a compensation applies it again). Idempotent.
 */
export async function resealSecretParameters(models: Pick<Models, 'Resource'>, keyring: Keyring): Promise<number> {
  const resources = await models.Resource.find(
    { $or: [{ 'secretParameters.0': { $exists: true } }, { 'stack.lastGood.secretParameters.0': { $exists: true } }] },
    { secretParameters: 1, 'stack.lastGood.secretParameters': 1 },
  ).lean<{ _id: string; secretParameters?: SealedParameter[]; stack?: { lastGood?: { secretParameters?: SealedParameter[] } } }[]>();
  const stale = (list: SealedParameter[] | undefined) => (list ?? []).some((p) => p.sealed.keyId !== keyring.active.id);
  const reseal = (id: string, list: SealedParameter[]) =>
    list.map((p) => ({ key: p.key, sealed: keyring.seal(keyring.open(p.sealed, sealedFor(id, p.key)), sealedFor(id, p.key)) }));
  let resealed = 0;
  for (const resource of resources) {
    const current = resource.secretParameters;
    const lastGood = resource.stack?.lastGood?.secretParameters;
    if (!stale(current) && !stale(lastGood)) continue;
    await models.Resource.updateOne(
      { _id: resource._id },
      {
        $set: {
          ...(current && stale(current) ? { secretParameters: reseal(resource._id, current) } : {}),
          ...(lastGood && stale(lastGood) ? { 'stack.lastGood.secretParameters': reseal(resource._id, lastGood) } : {}),
        },
      },
    );
    resealed++;
  }
  return resealed;
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
