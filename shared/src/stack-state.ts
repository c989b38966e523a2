import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { type Models, STATE_VERSIONS_KEPT, type StackJobDoc, type StackStateDoc } from './models/index.js';
import type { Keyring, SealedSecret } from './secret-box.js';
import { SECRET_PLACEHOLDER } from './parameters.js';
import { tenantOf } from './tenancy.js';
import { type Operation, STATE_OPERATIONS } from './types.js';

/** The most a state version may take in the store, gzipped (a document holds 16 MiB). */
export const STATE_MAX_BYTES = 15 * 1024 * 1024;
/** The most a state version may take as JSON (what a read parses). */
export const STATE_MAX_JSON_BYTES = 64 * 1024 * 1024;

/** Pulumi's mark of a secret value in state: `{ "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", ciphertext }`. */
const SECRET_SIG = '4dabf18193072939515e22adb298388d';

/** A resource as Pulumi's deployment (format 3) holds it. */
interface StateResource {
  urn: string;
  type: string;
  custom?: boolean;
  id?: string;
  provider?: string;
  parent?: string;
  dependencies?: string[];
  protect?: boolean;
  inputs?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
  created?: string;
  modified?: string;
}

export interface Deployment {
  resources?: StateResource[];
  pending_operations?: { resource: StateResource; type: string }[];
  [key: string]: unknown;
}

/**
 * Records the state a job left, as the stack's next version (seq + 1), unless it is the same as the
 * latest; keeps the last STATE_VERSIONS_KEPT. Returns the new version, or undefined if unchanged.
 */
export async function recordStackState(
  models: Pick<Models, 'StackState'>,
  job: Pick<StackJobDoc, '_id' | 'tenantId' | 'resourceId' | 'stackFqdn' | 'operation' | 'createdBy'>,
  deploymentJson: string,
  changes: Record<string, number>,
  /** Seals the outputs holding secrets for a version (its context: secretOutputsContext); none: none. */
  sealOutputs?: (context: string) => SealedSecret | undefined,
): Promise<StackStateDoc | undefined> {
  if (Buffer.byteLength(deploymentJson) > STATE_MAX_JSON_BYTES) {
    throw new Error(`the stack state is more than ${STATE_MAX_JSON_BYTES} bytes of JSON: not kept`);
  }
  const deployment = JSON.parse(deploymentJson) as Deployment;
  // What the stack holds, not when it was written (Pulumi stamps each write in `manifest.time`).
  // (each resource as the API shows it: not its times, source positions or property dependencies,
  // nor secrets' ciphertexts, which every write encrypts anew; a refresh that finds nothing new
  // still moves all of those).
  const held = JSON.stringify(stackContents(deployment));
  // A job that changed something always leaves a version (a secret's new value shows only as new ciphertext).
  // So does every state operation (a restore or import of a state that looks the same is still one).
  const changed =
    STATE_OPERATIONS.includes(job.operation as Operation) || Object.entries(changes).some(([kind, count]) => kind !== 'same' && count > 0);
  const sha256 = createHash('sha256').update(held).digest('hex');
  const data = gzipSync(deploymentJson);
  if (data.length > STATE_MAX_BYTES)
    throw new Error(`the stack state is ${data.length} bytes gzipped, more than ${STATE_MAX_BYTES}: not kept`);
  for (let attempt = 1; ; attempt++) {
    const latest = await models.StackState.findOne({ resourceId: job.resourceId }, { sha256: 1, seq: 1, jobId: 1 })
      .sort({ seq: -1 })
      .lean<Pick<StackStateDoc, '_id' | 'sha256' | 'seq' | 'jobId'>>();
    if (latest?.sha256 === sha256 && !changed) {
      // The same state (secrets' values are not in its hash): a secret output's value may still be new.
      const sealed = sealOutputs?.(secretOutputsContext({ resourceId: job.resourceId, jobId: latest.jobId }));
      if (sealed) await models.StackState.updateOne({ _id: latest._id }, { $set: { secretOutputs: sealed } });
      return undefined;
    }
    // A repeat of this job's own write (its first answer lost) finds it there.
    if (latest && (await models.StackState.exists({ resourceId: job.resourceId, seq: latest.seq, jobId: job._id }))) return undefined;
    const seq = (latest?.seq ?? 0) + 1;
    try {
      const doc = await models.StackState.create({
        tenantId: tenantOf(job),
        resourceId: job.resourceId,
        stackFqdn: job.stackFqdn,
        seq,
        jobId: job._id,
        operation: job.operation,
        createdBy: job.createdBy?.name,
        writtenAt: new Date(),
        resourceCount: deployment.resources?.length ?? 0,
        changes,
        sha256,
        data,
        bytes: Buffer.byteLength(deploymentJson),
        ...withSealed(sealOutputs?.(secretOutputsContext({ resourceId: job.resourceId, jobId: job._id }))),
      });
      await models.StackState.deleteMany({ resourceId: job.resourceId, seq: { $lte: seq - STATE_VERSIONS_KEPT } });
      return doc.toObject() as StackStateDoc;
    } catch (err) {
      // Jobs on one stack run one at a time; a repeat of this write (its first answer lost) meets itself.
      if ((err as { code?: number }).code !== 11000 || attempt >= 3) throw err;
    }
  }
}

const withSealed = (sealed: SealedSecret | undefined) => (sealed ? { secretOutputs: sealed } : {});

/** What a state version's sealed secret outputs are bound to: copied onto another version or stack, they do not open. */
export function secretOutputsContext(doc: Pick<StackStateDoc, 'resourceId' | 'jobId'>): string {
  return `stack-outputs:${doc.resourceId}:${doc.jobId}`;
}

/** Whether a state's JSON text holds any Pulumi secret (a cheap look before parsing it). */
export function holdsPulumiSecret(deploymentJson: string): boolean {
  return deploymentJson.includes(SECRET_SIG);
}

/** The names of the stack outputs that hold a Pulumi secret anywhere in their value. */
export function secretOutputNames(deployment: Deployment): string[] {
  const stack = deployment.resources?.find((r) => r.type === 'pulumi:pulumi:Stack');
  const holdsSecret = (value: unknown): boolean =>
    value !== null && typeof value === 'object' && (SECRET_SIG in value || Object.values(value).some(holdsSecret));
  return Object.entries((stack?.outputs ?? {}) as Record<string, unknown>)
    .filter(([, value]) => holdsSecret(value))
    .map(([name]) => name);
}

/** Re-seals every state version's secret outputs with the active key (a key rotation). */
export async function resealSecretOutputs(models: Pick<Models, 'StackState'>, keyring: Keyring): Promise<number> {
  const stale = await models.StackState.find(
    { secretOutputs: { $exists: true }, 'secretOutputs.keyId': { $ne: keyring.active.id } },
    { _id: 1, resourceId: 1, jobId: 1, secretOutputs: 1 },
  ).lean<Pick<StackStateDoc, '_id' | 'resourceId' | 'jobId' | 'secretOutputs'>[]>();
  for (const doc of stale) {
    const sealed = doc.secretOutputs as SealedSecret; // the query matched only docs that have them
    const context = secretOutputsContext(doc);
    await models.StackState.updateOne(
      { _id: doc._id, 'secretOutputs.keyId': sealed.keyId },
      { $set: { secretOutputs: keyring.seal(keyring.open(sealed, context), context) } },
    );
  }
  return stale.length;
}

/** A stored version's deployment. */
export function readDeployment(doc: Pick<StackStateDoc, 'data'>): Deployment {
  return JSON.parse(gunzipStored(doc.data)) as Deployment;
}

/** The text of gzipped JSON kept in the store (a state, an update plan), at most STATE_MAX_JSON_BYTES. */
export function gunzipStored(data: unknown): string {
  // A lean read gives BSON's Binary, a hydrated one a Buffer.
  const bytes = Buffer.isBuffer(data) ? data : Buffer.from((data as { buffer: Uint8Array }).buffer);
  return gunzipSync(bytes, { maxOutputLength: STATE_MAX_JSON_BYTES }).toString('utf8');
}

/** A value with every Pulumi secret in it replaced by `[secret]`. */
export function maskStateSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(maskStateSecrets);
  if (value === null || typeof value !== 'object') return value;
  if (SECRET_SIG in value) return SECRET_PLACEHOLDER;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskStateSecrets(v)]));
}

/** The name part of a URN (`urn:pulumi:stack::project::type::name`). */
const nameOf = (urn: string) => urn.slice(urn.lastIndexOf('::') + 2);

/** A resource of the state as people read it: what it is, where it sits, and its values, secrets masked. */
function resourceView(resource: StateResource) {
  return {
    urn: resource.urn,
    type: resource.type,
    name: nameOf(resource.urn),
    custom: resource.custom ?? false,
    ...(resource.id ? { id: resource.id } : {}),
    ...(resource.provider ? { provider: resource.provider } : {}),
    ...(resource.parent ? { parent: resource.parent } : {}),
    dependencies: resource.dependencies ?? [],
    protect: resource.protect ?? false,
    inputs: maskStateSecrets(resource.inputs ?? {}) as Record<string, unknown>,
    outputs: maskStateSecrets(resource.outputs ?? {}) as Record<string, unknown>,
  };
}

/** What a stack holds: its resources and the operations an interrupted run left pending. */
export function stackContents(deployment: Deployment) {
  return {
    resources: (deployment.resources ?? []).map(resourceView),
    pendingOperations: (deployment.pending_operations ?? []).map((op) => ({
      type: op.type,
      urn: op.resource.urn,
      resourceType: op.resource.type,
    })),
  };
}

/** The stack's outputs (the root stack resource's), secrets masked. */
export function stackOutputs(deployment: Deployment): Record<string, unknown> {
  const root = deployment.resources?.find((r) => r.type === 'pulumi:pulumi:Stack');
  return maskStateSecrets(root?.outputs ?? {}) as Record<string, unknown>;
}

/** The top-level fields of a resource that differ between two versions (`inputs.size`, `protect`, …). */
function changedFields(a: StateResource, b: StateResource): string[] {
  const fields: string[] = [];
  for (const part of ['inputs', 'outputs'] as const) {
    const keys = new Set([...Object.keys(a[part] ?? {}), ...Object.keys(b[part] ?? {})]);
    // Secrets compare as equal: their ciphertext changes with every write, their value cannot be read here.
    const same = (key: string) => JSON.stringify(maskStateSecrets(a[part]?.[key])) === JSON.stringify(maskStateSecrets(b[part]?.[key]));
    for (const key of keys) if (!same(key)) fields.push(`${part}.${key}`);
  }
  for (const key of ['id', 'provider', 'parent', 'protect', 'dependencies'] as const) {
    if (JSON.stringify(a[key]) !== JSON.stringify(b[key])) fields.push(key);
  }
  return fields;
}

/** What changed from one version to another, by URN: resources added, removed, and changed (with their fields). */
export function diffDeployments(from: Deployment, to: Deployment) {
  const before = new Map((from.resources ?? []).map((r) => [r.urn, r]));
  const after = new Map((to.resources ?? []).map((r) => [r.urn, r]));
  const changed: { urn: string; fields: string[] }[] = [];
  for (const [urn, resource] of after) {
    const old = before.get(urn);
    if (!old) continue;
    const fields = changedFields(old, resource);
    if (fields.length > 0) changed.push({ urn, fields });
  }
  return {
    added: [...after.keys()].filter((urn) => !before.has(urn)),
    removed: [...before.keys()].filter((urn) => !after.has(urn)),
    changed,
  };
}
