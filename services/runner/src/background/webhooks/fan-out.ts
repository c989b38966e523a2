import { createHash } from 'node:crypto';
import {
  approvalAsShown,
  approvalOfJob,
  type DeliveryRetries,
  isDuplicateKey,
  isFinalStatus,
  jobEndEvent,
  type JobStatus,
  type Models,
  type Operation,
  queueDelivery,
  trimDeliveries,
  type StackJobDoc,
  tenantOf,
  type WebhookDoc,
  type WebhookEvent,
} from '@pds/shared';
import type { Queue } from 'bullmq';

export interface FanOutDeps {
  models: Pick<Models, 'StackJob' | 'Resource' | 'Webhook' | 'WebhookDelivery' | 'EventCounter'>;
  queue: Pick<Queue, 'add'>;
  retries: DeliveryRetries;
}

/** A document another fan-out (a retry) inserted first is the same document. */
function ignoreDuplicate(err: unknown): void {
  if (!isDuplicateKey(err)) throw err;
}

const digest = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 32);

/**
 * The number of an event among the events about its resource (receivers order by it): taken once
 * per event (`event:<key>`), so a repeated fan-out sends the same number to every webhook.
 */
async function sequenceOf(models: FanOutDeps['models'], resourceId: string, eventKey: string): Promise<number> {
  const taken = await models.EventCounter.findById(`event:${eventKey}`).lean<{ seq: number }>();
  if (taken) return taken.seq;
  const counter = await models.EventCounter.findOneAndUpdate(
    { _id: `resource:${resourceId}` },
    { $inc: { seq: 1 } },
    { upsert: true, returnDocument: 'after' },
  ).lean<{ seq: number }>();
  // An insert, not an upsert: the embedded store's upsert shows a reader the document before its fields.
  await models.EventCounter.create({ _id: `event:${eventKey}`, seq: counter?.seq ?? 1 }).catch(ignoreDuplicate);
  return (await models.EventCounter.findById(`event:${eventKey}`).lean<{ seq: number }>())?.seq ?? 1;
}

/** The body of a job-end event: what ended, how, on which resource, at whose request. */
async function jobEndPayload(deps: FanOutDeps, job: StackJobDoc, event: string): Promise<string> {
  const resource = await deps.models.Resource.findById(job.resourceId, { name: 1 }).lean<{ name: string }>();
  return JSON.stringify({
    type: event,
    timestamp: (job.finishedAt ?? new Date()).toISOString(),
    data: {
      tenant: tenantOf(job),
      sequence: await sequenceOf(deps.models, job.resourceId, `${job._id}:${event}`),
      actor: job.createdBy?.id ? { id: job.createdBy.id, name: job.createdBy.name } : { id: 'service', name: 'the service' },
      resource: { id: job.resourceId, ...(resource ? { name: resource.name } : {}), kind: job.kind, stackFqdn: job.stackFqdn },
      job: {
        id: job._id,
        operation: job.operation,
        status: job.status,
        ...(job.reason ? { reason: job.reason } : {}),
        ...(job.error ? { error: job.error } : {}),
        summary: job.summary ?? {},
        createdAt: job.createdAt.toISOString(),
        ...(job.startedAt ? { startedAt: job.startedAt.toISOString() } : {}),
        ...(job.finishedAt ? { finishedAt: job.finishedAt.toISOString() } : {}),
        ...(job.stateVersion !== undefined ? { stateVersion: job.stateVersion } : {}),
        ...(job.remediates ? { remediates: job.remediates } : {}),
      },
      ...(job.drift ? { drift: job.drift } : {}),
      ...(job.approval ? { approval: approvalAsShown(approvalOfJob(job)!) } : {}),
    },
  });
}

/**
 * A job's end, as one message per webhook of its tenant that asked for the event. Safe to repeat:
 * a message's id comes from the job, the event and the webhook, and one stored is kept as it is.
 */
export async function fanOutJobEnd(deps: FanOutDeps, jobId: string, named?: WebhookEvent): Promise<number> {
  const job = await deps.models.StackJob.findById(jobId).lean<StackJobDoc>();
  // Publish checks of templates are the service's own runs, not a tenant's deployment.
  if (!job || job.templateCheck) return 0;
  // Queued before its end was written (that write failed; the reconciler ends it later): try again then.
  if (!named && !isFinalStatus(job.status as JobStatus)) throw new Error(`job ${jobId} has not ended yet (${job.status})`);
  const event = named ?? jobEndEvent(job.operation as Operation, job.status, job.drift ?? undefined);
  if (!event) return 0;
  const hooks = await deps.models.Webhook.find({ tenantId: tenantOf(job), active: true, events: event }).lean<WebhookDoc[]>();
  if (hooks.length === 0) return 0;
  const payload = await jobEndPayload(deps, job, event);
  for (const hook of hooks) {
    const id = `msg_${digest(`${job._id} ${event} ${hook._id}`)}`;
    // Inserted whole (a repeated fan-out finds it there): an upsert can be read half-written on the embedded store.
    await deps.models.WebhookDelivery.create({ _id: id, webhookId: hook._id, tenantId: hook.tenantId, event, payload }).catch(
      ignoreDuplicate,
    );
    await queueDelivery(deps.queue, id, deps.retries);
    await trimDeliveries(deps.models, hook._id);
  }
  return hooks.length;
}
