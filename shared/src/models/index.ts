import type { Connection } from 'mongoose';
import { apiTokenModel } from './api-token.js';
import { auditEntryModel } from './audit-entry.js';
import { credentialModel } from './credential.js';
import { jobLineChunkModel } from './job-line.js';
import { resourceModel } from './resource.js';
import { stackJobModel } from './stack-job.js';

export * from './api-token.js';
export * from './audit-entry.js';
export * from './credential.js';
export * from './job-line.js';
export * from './resource.js';
export * from './stack-job.js';

/** All models, bound to one connection (each test can bring its own database). */
export function createModels(connection: Connection) {
  return {
    Resource: resourceModel(connection),
    StackJob: stackJobModel(connection),
    JobLineChunk: jobLineChunkModel(connection),
    Credential: credentialModel(connection),
    ApiToken: apiTokenModel(connection),
    AuditEntry: auditEntryModel(connection),
  };
}

export type Models = ReturnType<typeof createModels>;

/** Builds every declared index; run once at start-up so uniqueness holds before the first write. */
export async function syncIndexes(models: Models): Promise<void> {
  await Promise.all(Object.values(models).map((model) => model.createIndexes()));
}
