import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import type { ApiClient } from '../api-client.js';
import type { Context } from '../context.js';
import { CliError, EXIT } from '../exit-codes.js';
import { changeLine, type JobView, outputOption } from '../output.js';

interface ResourceView {
  id: string;
  kind: string;
  name: string;
  version: number;
}

/** `pds deploy -f manifest.yaml`: creates or updates the resource, queues its up (or preview), and follows it with --follow. */
export function deployCommand(program: Command, context: Context, setExit: (code: number) => void): void {
  program
    .command('deploy')
    .description('create or update a resource from its manifest, and queue its up (or preview)')
    .requiredOption('-f, --file <manifest>', 'the resource manifest (YAML: apiVersion, kind, metadata.name, spec)')
    .option('--preview', 'queue a preview instead: what an up would change, nothing applied')
    .option('--follow', 'follow the job to its end (exit code: the job’s)')
    .option('--tenant <tenant>', 'the tenant to create the resource in (a platform token only)')
    .option('-m, --message <text>', "the job's message (kept with the job)")
    .addOption(outputOption())
    .addHelpText(
      'after',
      '\nExamples:\n  pds deploy -f examples/local-file-set.yaml --follow\n  pds deploy -f bucket.yaml --preview -o json | jq -r .job.id',
    )
    .action(async (options: { file: string; preview?: boolean; follow?: boolean; tenant?: string; message?: string; output: string }) => {
      const manifest = await readFile(options.file, 'utf8').catch((err: NodeJS.ErrnoException) => {
        throw new CliError(`cannot read ${options.file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`, EXIT.usage);
      });
      const { kind, name } = identify(manifest, options.file);
      const api = await context.api();
      const { resource, created } = await createOrUpdate(api, manifest, options.tenant);
      const operation = options.preview ? 'preview' : 'up';
      const job = await api.call<JobView>(`/v1/resources/${resource.id}/jobs`, {
        method: 'POST',
        body: { operation, ...(options.message ? { message: options.message } : {}) },
      });
      if (options.output === 'json')
        context.out(JSON.stringify({ resource: { id: resource.id, version: resource.version, created }, job }, null, 2));
      else {
        context.out(`${created ? 'created' : 'updated'} ${kind}/${name} (version ${resource.version})`);
        context.out(`job ${job.id} queued: ${operation}${options.follow ? '' : `\nfollow it: pds watch ${job.id}`}`);
      }
      if (options.follow)
        setExit(
          await context.follow(job.id, 0, {
            show: (message) => {
              const line = changeLine(message);
              if (line && options.output !== 'json') context.out(line);
            },
          }),
        );
    });
}

/**
 * Creates the resource, or, when the tenant has one of that kind and name already (the API's 409
 * names it), replaces its manifest: the tenant is the API's to decide (the token's, or --tenant),
 * never guessed from a list a platform token sees whole.
 */
async function createOrUpdate(
  api: ApiClient,
  manifest: string,
  tenant: string | undefined,
): Promise<{ resource: ResourceView; created: boolean }> {
  const query = tenant ? `?tenant=${encodeURIComponent(tenant)}` : '';
  try {
    return { resource: await api.call<ResourceView>(`/v1/resources${query}`, { method: 'POST', yaml: manifest }), created: true };
  } catch (err) {
    const existing = err instanceof CliError && err.status === 409 ? err.existingId : undefined;
    if (!existing) throw err;
    return { resource: await api.call<ResourceView>(`/v1/resources/${existing}`, { method: 'PUT', yaml: manifest }), created: false };
  }
}

/** The manifest's kind and name, or a usage error naming what is missing. */
function identify(text: string, file: string): { kind: string; name: string } {
  let manifest: { kind?: unknown; metadata?: { name?: unknown } };
  try {
    manifest = (parseYaml(text) ?? {}) as typeof manifest;
  } catch (err) {
    throw new CliError(`${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`, EXIT.usage);
  }
  if (typeof manifest.kind !== 'string' || !manifest.kind)
    throw new CliError(`${file}: kind is missing (the template, e.g. LocalFileSet)`, EXIT.usage);
  const name = manifest.metadata?.name;
  if (typeof name !== 'string' || !name) throw new CliError(`${file}: metadata.name is missing`, EXIT.usage);
  return { kind: manifest.kind, name };
}
