import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { STATE_MAX_JSON_BYTES } from '@pds/shared';
import { execa } from 'execa';
import type { JobCommand } from '../sandbox/job-sandbox.js';

/** What exporting needs of a run: the CLI, its environment and folder, and the stack. */
export interface ExportSpec {
  stackFqdn: string;
  /** The stack's own backend (a `file://` folder holding only this stack, or a blob store). */
  backendUrl: string;
  workspaceDir: string;
  env: Record<string, string>;
  /** The job's CLI process for these arguments (in its sandbox, or as its uid). */
  command(args: readonly string[]): JobCommand;
  /** A process of the job (in its sandbox, or as its uid) that prints the file at `path`. */
  read(path: string): JobCommand;
}

/**
 * The stack's deployment as the run left it (JSON text: resources, pending operations; secrets
 * encrypted as Pulumi keeps them), or undefined when the stack has none. Read as the job's own
 * uid, in its sandbox: the state folder was the job's during the run, so whatever its program left
 * there (a link to another stack's folder, a huge file) is read with the job's rights and within
 * STATE_MAX_JSON_BYTES, never with the runner's.
 *
 * A `file://` backend's checkpoint is read as it is (what `pulumi stack export` prints is its
 * `latest`, marshalled again: the same JSON), which spares a second CLI process on every job's path
 * (about 150 ms); anything else (a blob store, a gzipped or missing checkpoint) asks `pulumi stack export`.
 */
export async function exportDeployment(spec: ExportSpec): Promise<string | undefined> {
  const checkpoint = await readCheckpoint(spec);
  if (checkpoint !== undefined) return checkpoint;
  const exported = await runForJson(spec, spec.command(['stack', 'export', '--stack', spec.stackFqdn]));
  if (exported === undefined) return undefined;
  const { deployment } = exported as { deployment?: unknown };
  return deployment === undefined ? undefined : JSON.stringify(deployment);
}

/** The `latest` deployment of the stack's checkpoint file, when its backend is a folder and the file is there as JSON. */
async function readCheckpoint(spec: ExportSpec): Promise<string | undefined> {
  if (!spec.backendUrl.startsWith('file://')) return undefined;
  const [, project, stack] = spec.stackFqdn.split('/');
  if (!project || !stack) return undefined;
  const path = join(fileURLToPath(spec.backendUrl), '.pulumi', 'stacks', project, `${stack}.json`);
  // With PULUMI_SELF_MANAGED_STATE_GZIP the CLI keeps `.json.gz`: the CLI is asked then.
  if (
    await access(`${path}.gz`).then(
      () => true,
      () => false,
    )
  )
    return undefined;
  const file = (await runForJson(spec, spec.read(path))) as { version?: unknown; checkpoint?: { latest?: unknown } } | undefined;
  const latest = file?.checkpoint?.latest as { resources?: unknown } | null | undefined;
  // Only a checkpoint of the shape the CLI writes; anything else is the CLI's to read (and refuse).
  const shaped =
    file?.version === 3 &&
    latest !== null &&
    typeof latest === 'object' &&
    (latest.resources === undefined || Array.isArray(latest.resources));
  return shaped ? JSON.stringify(latest) : undefined;
}

/** How long reading the state may take: a job could leave a FIFO where its checkpoint was, and write it slowly. */
const STATE_READ_TIMEOUT_MS = 60_000;

/** What a job's process printed, parsed as JSON (undefined when it failed); larger than STATE_MAX_JSON_BYTES or slower than a minute: an error. */
async function runForJson(spec: ExportSpec, command: JobCommand): Promise<unknown> {
  const result = await execa(command.file, command.args, {
    cwd: spec.workspaceDir,
    env: spec.env,
    extendEnv: false,
    ...command.user,
    stdin: 'ignore',
    reject: false,
    maxBuffer: STATE_MAX_JSON_BYTES,
    timeout: STATE_READ_TIMEOUT_MS,
  });
  if (result.isMaxBuffer) throw new Error(`the stack state is larger than ${STATE_MAX_JSON_BYTES} bytes of JSON: not kept`);
  if (result.timedOut) throw new Error(`the stack state could not be read within ${STATE_READ_TIMEOUT_MS / 1000} s: not kept`);
  if (result.exitCode !== 0) return undefined;
  return JSON.parse(result.stdout) as unknown;
}
