import {
  approvalAsShown,
  creatorOf,
  decodeOutputs,
  isFinalStatus,
  type JobResult,
  type JobStatus,
  parseManifest,
  type Progress,
  type ResourceDoc,
  type StackJobDoc,
  STORED_MANIFEST,
  tenantOf,
  type WaitReason,
} from '@pds/shared';
import type { Static } from '@sinclair/typebox';
import type { JobSchema } from '../routes/schemas.js';

/** A job as the API shows it: the type of its schema (routes/schemas.ts), one source for both. */
export type JobView = Static<typeof JobSchema>;

/** A stack's life as the API shows it (outputs parsed; resources of earlier versions: `pending`). */
function stackView(stack: ResourceDoc['stack']) {
  return {
    status: stack?.status ?? ('pending' as const),
    ...(stack?.jobId ? { jobId: stack.jobId } : {}),
    ...(stack?.changedAt ? { changedAt: stack.changedAt.toISOString() } : {}),
    ...(stack?.outputs !== undefined ? { outputs: decodeOutputs(stack.outputs) } : {}),
    ...(stack?.lastDeployedAt ? { lastDeployedAt: stack.lastDeployedAt.toISOString() } : {}),
    ...(stack?.lastDeployedBy ? { lastDeployedBy: stack.lastDeployedBy } : {}),
    ...(stack?.resourceVersion !== undefined ? { resourceVersion: stack.resourceVersion } : {}),
    ...(stack?.templateVersion ? { templateVersion: stack.templateVersion } : {}),
  };
}

/** A resource as the API shows it: the manifest's fields plus identity and version. */
export function resourceView(doc: ResourceDoc) {
  // A stored manifest was accepted under the size cap of its day: no cap here.
  const manifest = parseManifest(doc.manifest, STORED_MANIFEST);
  return {
    id: doc._id,
    tenant: tenantOf(doc),
    apiVersion: manifest.apiVersion,
    kind: doc.kind,
    name: doc.name,
    stackFqdn: doc.stackFqdn,
    labels: manifest.metadata.labels,
    spec: manifest.spec,
    manifest: doc.manifest,
    version: doc.version,
    ...(doc.templateVersion ? { templateVersion: doc.templateVersion } : {}),
    stack: stackView(doc.stack),
    createdAt: doc.createdAt.toISOString(),
    updatedAt: doc.updatedAt.toISOString(),
  };
}

/** A job as the API shows it; `result` once it has ended. */
export function jobView(
  doc: StackJobDoc & { position?: number; blockedBy?: string; waitReason?: WaitReason; progress?: Progress },
): JobView {
  const status = doc.status as JobStatus;
  const result: JobResult | undefined = isFinalStatus(status)
    ? {
        status,
        timestamp: (doc.finishedAt ?? doc.updatedAt).toISOString(),
        stackFqdn: doc.stackFqdn,
        stdout: doc.stdoutTail ?? '',
        stderr: doc.stderrTail ?? '',
        exitCode: doc.exitCode ?? null,
        ...(doc.error ? { error: doc.error } : {}),
        outputs: decodeOutputs(doc.outputs),
        summary: doc.summary ?? {},
      }
    : undefined;
  return {
    id: doc._id,
    tenant: tenantOf(doc),
    resourceId: doc.resourceId,
    resourceVersion: doc.resourceVersion,
    kind: doc.kind,
    stackFqdn: doc.stackFqdn,
    operation: doc.operation,
    status,
    options: doc.options ?? {},
    ...creatorOf(doc),
    reason: doc.reason ?? undefined,
    ...(status === 'queued' && doc.position !== undefined && doc.position !== null ? { position: doc.position } : {}),
    ...(status === 'queued' && doc.blockedBy ? { blockedBy: doc.blockedBy } : {}),
    ...(status === 'queued' && doc.waitReason ? { waitReason: doc.waitReason } : {}),
    ...(status === 'running' && doc.progress ? { progress: doc.progress } : {}),
    attempt: doc.attempt ?? 1,
    ...(doc.retryOf ? { retryOf: doc.retryOf } : {}),
    ...(doc.retriedBy ? { retriedBy: doc.retriedBy } : {}),
    ...(doc.recovery ? { recovery: doc.recovery } : {}),
    ...(typeof doc.stateVersion === 'number' ? { stateVersion: doc.stateVersion } : {}),
    ...(doc.usage ? { usage: doc.usage } : {}),
    ...(doc.drift ? { drift: doc.drift } : {}),
    ...(doc.remediatedBy ? { remediatedBy: doc.remediatedBy } : {}),
    ...(doc.remediates ? { remediates: doc.remediates } : {}),
    ...(doc.planFor ? { planFor: doc.planFor } : {}),
    ...(doc.compensation ? { compensation: doc.compensation } : {}),
    ...(doc.compensates ? { compensates: doc.compensates } : {}),
    ...(doc.approval ? { approval: approvalAsShown(doc.approval) } : {}),
    ...(doc.templateCheck ? { templateCheck: true } : {}),
    lastSeq: doc.lastSeq ?? 0,
    ...(doc.linesSweptAt ? { linesSweptAt: doc.linesSweptAt.toISOString() } : {}),
    createdAt: doc.createdAt.toISOString(),
    startedAt: doc.startedAt?.toISOString(),
    finishedAt: doc.finishedAt?.toISOString(),
    result,
  };
}
