import type { Connection } from 'mongoose';
import { apiTokenModel } from './api-token.js';
import { auditEntryModel } from './audit-entry.js';
import { credentialModel } from './credential.js';
import { jobLineChunkModel } from './job-line.js';
import { liveJobModel } from './live-job.js';
import { resourceModel } from './resource.js';
import { stackJobModel } from './stack-job.js';
import { stackStateModel, stateUploadModel, updatePlanFileModel } from './stack-state.js';
import { storeLockModel } from './store-lock.js';
import { templateModel, templateVersionModel } from './template.js';
import { tenantModel } from './tenant.js';
import { eventCounterModel, webhookDeliveryModel, webhookModel } from './webhook.js';

export * from './api-token.js';
export * from './audit-entry.js';
export * from './credential.js';
export * from './job-line.js';
export * from './live-job.js';
export * from './resource.js';
export * from './stack-job.js';
export * from './tenant.js';
export * from './template.js';
export * from './stack-state.js';
export * from './store-lock.js';
export * from './webhook.js';
export * from './prepare-store.js';

/** All models, bound to one connection (each test can bring its own database). */
export function createModels(connection: Connection) {
  return {
    Resource: resourceModel(connection),
    StackJob: stackJobModel(connection),
    LiveJob: liveJobModel(connection),
    JobLineChunk: jobLineChunkModel(connection),
    Credential: credentialModel(connection),
    ApiToken: apiTokenModel(connection),
    AuditEntry: auditEntryModel(connection),
    Tenant: tenantModel(connection),
    StoreLock: storeLockModel(connection),
    Template: templateModel(connection),
    TemplateVersion: templateVersionModel(connection),
    StackState: stackStateModel(connection),
    StateUpload: stateUploadModel(connection),
    UpdatePlanFile: updatePlanFileModel(connection),
    Webhook: webhookModel(connection),
    WebhookDelivery: webhookDeliveryModel(connection),
    EventCounter: eventCounterModel(connection),
  };
}

export type Models = ReturnType<typeof createModels>;
