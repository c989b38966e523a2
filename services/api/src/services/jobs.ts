import {
  CANCEL_CHANNEL,
  type EndMessage,
  errors,
  isFinalStatus,
  jobChannel,
  type JobStatus,
  lineStore,
  type StackQueue,
  type Models,
  type Operation,
  STACK_JOBS_QUEUE,
  type StackJobDoc,
} from '@pds/shared';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { jobView } from './views.js';

export interface JobServiceDeps {
  models: Models;
  queue: Pick<Queue, 'add' | 'remove'>;
  /** For telling runners and watchers (cancel requests, end messages). */
  redis: Pick<Redis, 'publish'>;
  /** The per-stack line jobs wait in. */
  stacks: Pick<StackQueue, 'enqueue' | 'remove' | 'claim' | 'describe'>;
}

export interface CreateJobInput {
  operation: Operation;
  message?: string;
  timeoutSeconds?: number;
  expectNoChanges?: boolean;
  targets?: string[];
}

/** Creating, reading and listing stack jobs; knows nothing of HTTP. */
export function jobService({ models, queue, redis, stacks }: JobServiceDeps) {
  return {
    /** Records the job as queued, then puts it on the queue; if the queue is down, nothing is left behind. */
    async create(resourceId: string, input: CreateJobInput) {
      const resource = await models.Resource.findById(resourceId).lean();
      if (!resource) throw errors.notFound(`resource ${resourceId} not found`);
      const { operation, ...options } = input;
      const job = await models.StackJob.create({
        resourceId,
        resourceVersion: resource.version,
        kind: resource.kind,
        stackFqdn: resource.stackFqdn,
        operation,
        options,
      });
      try {
        // In line for the stack first, then on the queue: a runner that takes it finds it in line.
        await stacks.enqueue(resource.stackFqdn, job._id);
        await queue.add(
          STACK_JOBS_QUEUE,
          { stackFqdn: resource.stackFqdn },
          {
            jobId: job._id,
            removeOnComplete: { age: 24 * 3600 },
            removeOnFail: { age: 7 * 24 * 3600 },
          },
        );
      } catch (err) {
        await models.StackJob.deleteOne({ _id: job._id }).catch(() => undefined);
        await stacks.remove(resource.stackFqdn, job._id).catch(() => undefined);
        throw errors.unavailable(`the job queue (Redis) is unavailable; no job was created: ${(err as Error).message}`);
      }
      return jobView(job.toObject() as StackJobDoc);
    },

    /**
     * Cancels a job. A queued one ends `cancelled` at once and leaves the queue (`accepted: false`);
     * a running one is asked to stop — every runner hears the request, the one running it sends
     * Pulumi SIGINT, and the job ends `cancelled` with its lines so far (`accepted: true`).
     */
    async cancel(id: string) {
      const job = await models.StackJob.findById(id).lean<StackJobDoc>();
      if (!job) throw errors.notFound(`job ${id} not found`);
      if (isFinalStatus(job.status as JobStatus)) throw errors.conflict(`job ${id} has already ended (${job.status}); nothing to cancel`);
      const finishedAt = new Date();
      const cancelled =
        job.status === 'queued' &&
        (await stacks.claim(id, 'cancelled').catch((err: Error) => {
          throw errors.unavailable(`cannot cancel: Redis is unavailable: ${err.message}`);
        })) &&
        (await models.StackJob.findOneAndUpdate(
          { _id: id, status: 'queued' },
          { $set: { status: 'cancelled', reason: 'cancelled', error: 'cancelled before it started', finishedAt } },
          { returnDocument: 'after' },
        ).lean<StackJobDoc>());
      if (cancelled) {
        // The runner skips jobs that are no longer queued, so a failed removal only costs it a look.
        await queue.remove(id).catch(() => undefined);
        await stacks.remove(job.stackFqdn, id).catch(() => undefined);
        const end: EndMessage = {
          type: 'end',
          jobId: id,
          status: 'cancelled',
          exitCode: null,
          error: 'cancelled before it started',
          reason: 'cancelled',
          summary: {},
          lastSeq: 0,
          ts: finishedAt.toISOString(),
        };
        await redis.publish(jobChannel(id), JSON.stringify(end)).catch(() => undefined);
        return { accepted: false, job: jobView(cancelled) };
      }
      // It started meanwhile: ask the runners.
      try {
        await redis.publish(CANCEL_CHANNEL, id);
      } catch (err) {
        throw errors.unavailable(`cannot reach the runners (Redis is unavailable): ${(err as Error).message}`);
      }
      const current = await models.StackJob.findByIdAndUpdate(
        id,
        { $set: { cancelRequestedAt: finishedAt } },
        { returnDocument: 'after' },
      ).lean<StackJobDoc>();
      return { accepted: true, job: jobView(current ?? job) };
    },

    /** A job; while it waits for its stack, also its place in line and the job holding the stack. */
    async get(id: string) {
      const doc = await models.StackJob.findById(id).lean<StackJobDoc>();
      if (!doc) throw errors.notFound(`job ${id} not found`);
      if (doc.status !== 'queued') return jobView(doc);
      const where = await stacks.describe(doc.stackFqdn, id).catch(() => ({}) as { position?: number; holder?: string });
      return jobView({ ...doc, position: where.position, blockedBy: where.holder });
    },

    async list(filter: { resourceId?: string; status?: JobStatus; operation?: Operation; stackFqdn?: string; limit: number }) {
      const { limit, ...rest } = filter;
      const query = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
      const docs = await models.StackJob.find(query).sort({ createdAt: -1, _id: -1 }).limit(limit).lean<StackJobDoc[]>();
      return docs.map(jobView);
    },

    /** Persisted lines and events with seq > from, in order. */
    async lines(id: string, from: number, limit: number) {
      const exists = await models.StackJob.exists({ _id: id });
      if (!exists) throw errors.notFound(`job ${id} not found`);
      return lineStore(models).read(id, from, limit);
    },
  };
}
