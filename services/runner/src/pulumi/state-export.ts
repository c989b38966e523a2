import { STATE_MAX_JSON_BYTES } from '@pds/shared';
import { execa } from 'execa';
import type { JobCommand } from '../sandbox/job-sandbox.js';

/** What exporting needs of a run: the CLI, its environment and folder, and the stack. */
export interface ExportSpec {
  stackFqdn: string;
  workspaceDir: string;
  env: Record<string, string>;
  /** The job's CLI process for these arguments (in its sandbox, or as its uid). */
  command(args: readonly string[]): JobCommand;
}

/**
 * The stack's deployment as the run left it (JSON text: resources, pending operations; secrets
 * encrypted as Pulumi keeps them), or undefined when the stack has none. Asked of `pulumi stack
 * export` run as the job's own uid: the state folder was the job's during the run, so whatever its
 * program left there (a link to another stack's folder, a huge file) is read with the job's rights
 * and within STATE_MAX_JSON_BYTES, never with the runner's.
 */
export async function exportDeployment(spec: ExportSpec): Promise<string | undefined> {
  const exporting = spec.command(['stack', 'export', '--stack', spec.stackFqdn]);
  const result = await execa(exporting.file, exporting.args, {
    cwd: spec.workspaceDir,
    env: spec.env,
    extendEnv: false,
    ...exporting.user,
    reject: false,
    maxBuffer: STATE_MAX_JSON_BYTES,
  });
  if (result.isMaxBuffer) throw new Error(`the stack state is larger than ${STATE_MAX_JSON_BYTES} bytes of JSON: not kept`);
  if (result.exitCode !== 0) return undefined;
  const exported = JSON.parse(result.stdout) as { deployment?: unknown };
  return exported.deployment === undefined ? undefined : JSON.stringify(exported.deployment);
}
