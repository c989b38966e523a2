import { createHash } from 'node:crypto';
import {
  type DeliveryRetries,
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
} from '@pds/shared';
import type { Queue } from 'bullmq';

export interface FanOutDeps {
  models: Pick<Models, 'StackJob' | 'Resource' | 'Webhook' | 'WebhookDelivery' | 'EventCounter'>;
  queue: Pick<Queue, 'add'>;
  retries: DeliveryRetries;
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
  await models.EventCounter.updateOne({ _id: `event:${eventKey}` }, { $setOnInsert: { seq: counter?.seq ?? 1 } }, { upsert: true });
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
    },
  });
}

/**
 * A job's end, as one message per webhook of its tenant that asked for the event. Safe to repeat:
 * a message's id comes from the job, the event and the webhook, and one stored is kept as it is.
 */
export async function fanOutJobEnd(deps: FanOutDeps, jobId: string): Promise<number> {
  const job = await deps.models.StackJob.findById(jobId).lean<StackJobDoc>();
  // Publish checks of templates are the service's own runs, not a tenant's deployment.
  if (!job || job.templateCheck) return 0;
  // Queued before its end was written (that write failed; the reconciler ends it later): try again then.
  if (!isFinalStatus(job.status as JobStatus)) throw new Error(`job ${jobId} has not ended yet (${job.status})`);
  const event = jobEndEvent(job.operation as Operation, job.status, job.drift as { result?: string } | undefined);
  if (!event) return 0;
  const hooks = await deps.models.Webhook.find({ tenantId: tenantOf(job), active: true, events: event }).lean<WebhookDoc[]>();
  if (hooks.length === 0) return 0;
  const payload = await jobEndPayload(deps, job, event);
  for (const hook of hooks) {
    const id = `msg_${digest(`${job._id} ${event} ${hook._id}`)}`;
    await deps.models.WebhookDelivery.updateOne(
      { _id: id },
      { $setOnInsert: { webhookId: hook._id, tenantId: hook.tenantId, event, payload, status: 'pending', attempts: [], redeliveries: 0 } },
      { upsert: true },
    );
    await queueDelivery(deps.queue, id, deps.retries);
    await trimDeliveries(deps.models, hook._id);
  }
  return hooks.length;
}
