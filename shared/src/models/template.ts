import { randomUUID } from 'node:crypto';
import { type Connection, Schema } from 'mongoose';

/** The scope of a platform template: shown to every tenant (each tenant's policy still decides). */
export const PLATFORM_SCOPE = '*';

/** A version's life: editable draft → published (immutable) → deprecated (no new resources) → archived. */
export const TEMPLATE_VERSION_STATES = ['draft', 'checking', 'published', 'deprecated', 'archived'] as const;
export type TemplateVersionState = (typeof TEMPLATE_VERSION_STATES)[number];

/**
 * An uploaded template: a program that tenants' resources of kind `name` run, in versions. Owned by
 * a tenant (its own resources only) or the platform (`scope` PLATFORM_SCOPE: every tenant may use it).
 */
export const templateSchema = new Schema(
  {
    _id: { type: String, default: () => randomUUID() },
    /** The owning tenant, or PLATFORM_SCOPE. */
    scope: { type: String, required: true },
    name: { type: String, required: true },
    description: { type: String, default: '' },
    /** The cloud provider whose credential its jobs run with (`none`: offline). */
    provider: { type: String, default: 'none' },
    createdBy: { type: String, required: true },
  },
  { timestamps: true, versionKey: false },
);
templateSchema.index({ scope: 1, name: 1 }, { unique: true });
templateSchema.index({ name: 1 });

export interface TemplateDoc {
  _id: string;
  scope: string;
  name: string;
  description: string;
  provider: string;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
}

/** A file of a template version: its path (relative, POSIX) and text. */
export interface TemplateFile {
  path: string;
  content: string;
}

const fileSchema = { type: [{ _id: false, path: String, content: String }], default: [] };

/** One version of an uploaded template: its program's files, parameters schema and defaults. */
export const templateVersionSchema = new Schema(
  {
    _id: { type: String, default: () => randomUUID() },
    templateId: { type: String, required: true },
    scope: { type: String, required: true },
    name: { type: String, required: true },
    version: { type: String, required: true },
    state: { type: String, enum: TEMPLATE_VERSION_STATES, required: true, default: 'draft' },
    description: { type: String, default: '' },
    readme: { type: String, default: '' },
    /** The parameters schema and the defaults as JSON text (schemas hold `$` keys the store refuses). */
    parameters: { type: String, default: '{"type":"object"}' },
    defaults: { type: String, default: '{}' },
    /** The entry file among `files` (index.ts or index.js by default). */
    main: { type: String, required: true },
    files: fileSchema,
    /** What the service compiled (CommonJS JavaScript), when it was checked for publishing. */
    compiled: fileSchema,
    /** SHA-256 of the content (files, main, parameters, defaults), set when it is checked. */
    sha256: { type: String },
    /** The publish check under way or last run: its smoke-preview job and when it began. */
    check: { type: { _id: false, jobId: String, startedAt: Date, error: String } },
    publishedAt: { type: Date },
    publishedBy: { type: String },
    createdBy: { type: String, required: true },
  },
  { timestamps: true, versionKey: false },
);
templateVersionSchema.index({ templateId: 1, version: 1 }, { unique: true });

export interface TemplateVersionDoc {
  _id: string;
  templateId: string;
  scope: string;
  name: string;
  version: string;
  state: TemplateVersionState;
  description: string;
  readme: string;
  parameters: string;
  defaults: string;
  main: string;
  files: TemplateFile[];
  compiled: TemplateFile[];
  sha256?: string;
  check?: { jobId?: string; startedAt?: Date; error?: string };
  publishedAt?: Date;
  publishedBy?: string;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
}

export function templateModel(connection: Connection) {
  return connection.model('Template', templateSchema, 'templates');
}

export function templateVersionModel(connection: Connection) {
  return connection.model('TemplateVersion', templateVersionSchema, 'templateversions');
}
