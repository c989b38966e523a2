import { PLATFORM_SCOPE, type TemplateDoc, type TemplateVersionDoc } from '@pds/shared';

/** Who owns an uploaded template, as shown: a tenant's name, or `platform`. */
export const ownerOf = (scope: string) => (scope === PLATFORM_SCOPE ? 'platform' : scope);

/** An uploaded template as the catalogue shows it (`version`: its newest published version, if any). */
export function uploadedTemplateView(template: TemplateDoc, latest: TemplateVersionDoc | undefined) {
  return {
    name: template.name,
    source: 'uploaded' as const,
    owner: ownerOf(template.scope),
    version: latest?.version ?? '',
    description: template.description,
    readme: latest?.readme ?? '',
    provider: template.provider,
    project: template.name,
  };
}

/** A template version; its files only when asked (one version's read). */
export function versionView(version: TemplateVersionDoc, withFiles = false) {
  return {
    template: version.name,
    version: version.version,
    state: version.state,
    description: version.description,
    readme: version.readme,
    main: version.main,
    parameters: JSON.parse(version.parameters) as Record<string, unknown>,
    defaults: JSON.parse(version.defaults) as Record<string, unknown>,
    ...(withFiles ? { files: version.files.map((f) => ({ path: f.path, content: f.content })) } : {}),
    ...(version.sha256 && version.state !== 'draft' ? { sha256: version.sha256 } : {}),
    ...(version.check?.jobId ? { checkJobId: version.check.jobId } : {}),
    ...(version.check?.error ? { checkError: version.check.error } : {}),
    ...(version.publishedAt ? { publishedAt: version.publishedAt.toISOString(), publishedBy: version.publishedBy ?? '' } : {}),
    createdBy: version.createdBy,
    createdAt: version.createdAt.toISOString(),
  };
}
