import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * Where one stack's state lives, by its stack key (stackKeyOf: the FQDN, `<tenant>/<fqdn>` outside
 * the default tenant). With a `file://` backend every stack gets a folder of its own
 * (`<backend>/stacks/<sha256 of the key, 40 hex>`, itself a complete file backend), so that a job's
 * uid can be handed its own stack's state for the run and see no other stack's. Blob backends (S3,
 * GCS, Azure) get a `tenants/<tenant>` prefix outside the default tenant, so two tenants' stacks of
 * one FQDN do not meet; others (Pulumi Cloud) are used as they are.
 */
export function stackBackend(backendUrl: string, stackKey: string): { url: string; dir?: string } {
  if (!backendUrl.startsWith('file://')) return { url: tenantPrefixed(backendUrl, stackKey) };
  // One-to-one and one path component whatever the key holds: its SHA-256 (a readable join such as
  // org__project__stack would let two FQDNs with "_" in them share a folder).
  const dir = join(fileURLToPath(backendUrl), 'stacks', createHash('sha256').update(stackKey).digest('hex').slice(0, 40));
  return { url: pathToFileURL(dir).href, dir };
}

/**
 * Removes a stack's state folder (a publish check's throw-away stack). Only `file://` backends have
 * one; elsewhere the stack stays (with no resources: a preview creates none).
 */
export async function removeStackState(backendUrl: string, stackKey: string): Promise<void> {
  const { dir } = stackBackend(backendUrl, stackKey);
  if (dir) await rm(dir, { recursive: true, force: true });
}

const BLOB_SCHEMES = ['s3:', 'gs:', 'azblob:'];

/**
 * Whether a backend keeps two tenants' stacks of one FQDN apart (`file://` by folder, blob backends
 * by prefix). Others (Pulumi Cloud, …) would put both on one stack: jobs of tenants other than the
 * default one are refused there.
 */
export function backendSeparatesTenants(backendUrl: string): boolean {
  return backendUrl.startsWith('file://') || BLOB_SCHEMES.some((scheme) => backendUrl.startsWith(`${scheme}//`));
}

function tenantPrefixed(backendUrl: string, stackKey: string): string {
  const parts = stackKey.split('/');
  if (parts.length !== 4) return backendUrl; // the default tenant: as before tenants existed
  const url = new URL(backendUrl);
  if (!BLOB_SCHEMES.includes(url.protocol)) return backendUrl;
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/tenants/${parts[0]}`;
  return url.href;
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/**
 * Moves a stack kept in the shared layout of earlier versions (`<backend>/.pulumi/{stacks,history,
 * backups}/<project>/<stack>…`) into its own folder, once, before its first run in this version.
 * The caller holds the stack's lock. Does nothing when the stack already has its folder.
 */
export async function adoptSharedLayout(backendUrl: string, stackFqdn: string): Promise<boolean> {
  // Only the default tenant's stacks (key = FQDN) can have state from before tenants existed.
  const { dir } = stackBackend(backendUrl, stackFqdn);
  if (!dir || (await exists(join(dir, '.pulumi')))) return false;
  const shared = join(fileURLToPath(backendUrl), '.pulumi');
  const [, project, stack] = stackFqdn.split('/') as [string, string, string];
  const stackFiles = (await readdir(join(shared, 'stacks', project)).catch(() => [] as string[])).filter(
    (name) => name === `${stack}.json` || name.startsWith(`${stack}.json.`),
  );
  if (stackFiles.length === 0) return false;
  const target = join(dir, '.pulumi');
  await mkdir(join(target, 'stacks', project), { recursive: true, mode: 0o700 });
  for (const name of stackFiles) await rename(join(shared, 'stacks', project, name), join(target, 'stacks', project, name));
  for (const kind of ['history', 'backups']) {
    const from = join(shared, kind, project, stack);
    if (!(await exists(from))) continue;
    await mkdir(join(target, kind, project), { recursive: true, mode: 0o700 });
    await rename(from, join(target, kind, project, stack));
  }
  if (await exists(join(shared, 'meta.yaml'))) await copyFile(join(shared, 'meta.yaml'), join(target, 'meta.yaml'));
  return true;
}
