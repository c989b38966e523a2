import { errors, type KindRegistry, type Models, parseManifest, type ResourceDoc, resolveStackFqdn } from '@pds/shared';
import { resourceView } from './views.js';

export interface ResourceServiceDeps {
  models: Models;
  kinds: KindRegistry;
}

function isDuplicateKey(err: unknown): err is { keyPattern?: Record<string, unknown> } {
  return (err as { code?: number }).code === 11000;
}

/** Creating and reading resources; knows nothing of HTTP. */
export function resourceService({ models, kinds }: ResourceServiceDeps) {
  return {
    async create(manifestText: string) {
      const manifest = parseManifest(manifestText);
      const kind = kinds.get(manifest.kind);
      if (!kind) {
        throw errors.invalidManifest(`kind "${manifest.kind}" is unknown; known kinds: ${[...kinds.keys()].join(', ') || '(none)'}`);
      }
      const stackFqdn = resolveStackFqdn(manifest, kind.project);
      try {
        const doc = await models.Resource.create({
          kind: manifest.kind,
          name: manifest.metadata.name,
          stackFqdn,
          labels: Object.entries(manifest.metadata.labels).map(([key, value]) => ({ key, value })),
          manifest: manifestText,
        });
        return resourceView(doc.toObject() as unknown as ResourceDoc);
      } catch (err) {
        if (isDuplicateKey(err)) {
          const field = err.keyPattern?.stackFqdn ? `stack ${stackFqdn}` : `name ${manifest.metadata.name}`;
          throw errors.conflict(`a ${manifest.kind} resource with ${field} already exists`);
        }
        throw err;
      }
    },

    /** Replaces the manifest (same kind, name and stack) and bumps the version; jobs record the version they ran. */
    async replace(id: string, manifestText: string) {
      const manifest = parseManifest(manifestText);
      const current = await models.Resource.findById(id).lean<ResourceDoc>();
      if (!current) throw errors.notFound(`resource ${id} not found`);
      const kind = kinds.get(manifest.kind);
      if (manifest.kind !== current.kind || !kind) throw errors.invalidManifest(`kind cannot change (it is ${current.kind})`);
      if (manifest.metadata.name !== current.name) throw errors.invalidManifest(`metadata.name cannot change (it is ${current.name})`);
      const stackFqdn = resolveStackFqdn(manifest, kind.project);
      if (stackFqdn !== current.stackFqdn) throw errors.invalidManifest(`the stack cannot change (it is ${current.stackFqdn})`);
      const doc = await models.Resource.findOneAndUpdate(
        { _id: id, version: current.version },
        {
          $set: { manifest: manifestText, labels: Object.entries(manifest.metadata.labels).map(([key, value]) => ({ key, value })) },
          $inc: { version: 1 },
        },
        { returnDocument: 'after' },
      ).lean<ResourceDoc>();
      if (!doc) throw errors.conflict(`resource ${id} was changed by someone else; read it again and retry`);
      return resourceView(doc);
    },

    async get(id: string) {
      const doc = await models.Resource.findById(id).lean<ResourceDoc>();
      if (!doc) throw errors.notFound(`resource ${id} not found`);
      return resourceView(doc);
    },

    async list(filter: { kind?: string; limit: number }) {
      const query = filter.kind ? { kind: filter.kind } : {};
      const docs = await models.Resource.find(query).sort({ createdAt: -1 }).limit(filter.limit).lean<ResourceDoc[]>();
      return docs.map(resourceView);
    },
  };
}
