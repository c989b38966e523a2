import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';

/** What exporting needs of a run: the CLI, its environment and folder, and the stack. */
export interface ExportSpec {
  pulumiBin: string;
  /** The stack's own backend (stackBackend: a `file://` folder per stack, or a blob or cloud URL). */
  backendUrl: string;
  stackFqdn: string;
  workspaceDir: string;
  env: Record<string, string>;
  user: { uid?: number; gid?: number };
}

/**
 * The stack's deployment as the run left it (JSON text: resources, pending operations; secrets
 * encrypted as Pulumi keeps them), or undefined when the stack has none. A `file://` backend's
 * checkpoint is read directly (no Pulumi process); other backends are asked with `pulumi stack export`.
 */
export async function exportDeployment(spec: ExportSpec): Promise<string | undefined> {
  if (spec.backendUrl.startsWith('file://')) return readCheckpoint(fileURLToPath(spec.backendUrl), spec.stackFqdn);
  const result = await execa(spec.pulumiBin, ['stack', 'export', '--stack', spec.stackFqdn], {
    cwd: spec.workspaceDir,
    env: spec.env,
    extendEnv: false,
    ...spec.user,
    reject: false,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (result.exitCode !== 0) return undefined;
  const exported = JSON.parse(result.stdout) as { deployment?: unknown };
  return exported.deployment === undefined ? undefined : JSON.stringify(exported.deployment);
}

async function readCheckpoint(backendDir: string, stackFqdn: string): Promise<string | undefined> {
  const [, project, stack] = stackFqdn.split('/') as [string, string, string];
  const base = join(backendDir, '.pulumi', 'stacks', project, `${stack}.json`);
  const text = await readFile(base, 'utf8').catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
    // PULUMI_SELF_MANAGED_STATE_GZIP=true keeps it gzipped.
    return readFile(`${base}.gz`).then(
      (gz) => gunzipSync(gz).toString('utf8'),
      () => undefined,
    );
  });
  if (text === undefined) return undefined;
  const checkpoint = JSON.parse(text) as { checkpoint?: { latest?: unknown } };
  const latest = checkpoint.checkpoint?.latest;
  return latest === undefined ? undefined : JSON.stringify(latest);
}
