import { api } from './api.js';
import { href, navigate } from './router.js';
import type { Job } from './types.js';

/** Queues a job on a resource and opens its page. */
export async function startJob(resourceId: string, body: Record<string, unknown>): Promise<void> {
  const job = await api<Job>('POST', `v1/resources/${encodeURIComponent(resourceId)}/jobs`, { body });
  navigate(href(['jobs', job.id]));
}
