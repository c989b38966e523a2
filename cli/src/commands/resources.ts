import type { Command } from 'commander';
import type { Context } from '../context.js';
import { outputOption, table } from '../output.js';

const id = (value: string) => encodeURIComponent(value);

interface ResourceView {
  id: string;
  kind: string;
  name: string;
  stackFqdn: string;
  version: number;
  tenant?: string;
  templateVersion?: string;
  labels?: Record<string, string>;
  manifest?: string;
  createdAt?: string;
  updatedAt?: string;
}

interface StackResource {
  urn: string;
  type: string;
  name: string;
  protect?: boolean;
}

/** Read-only views of resources and their stacks' state: `pds resources|state`. */
export function readCommands(program: Command, context: Context): void {
  const resources = program.command('resources').description('list and show resources');
  resources
    .command('ls')
    .description('the newest resources first')
    .option('--kind <kind>', 'only those of this template')
    .option('--name-prefix <prefix>', 'only those whose name starts so')
    .option('--limit <n>', 'how many', '50')
    .addOption(outputOption())
    .addHelpText('after', '\nExample:\n  pds resources ls --kind LocalFileSet')
    .action(async (options: { kind?: string; namePrefix?: string; limit: string; output: string }) => {
      const query = new URLSearchParams({ limit: options.limit });
      if (options.kind) query.set('kind', options.kind);
      if (options.namePrefix) query.set('namePrefix', options.namePrefix);
      const page = await (await context.api()).call<{ items: ResourceView[] }>(`/v1/resources?${query}`);
      context.out(
        options.output === 'json'
          ? JSON.stringify(page, null, 2)
          : table(
              ['ID', 'KIND', 'NAME', 'VERSION', 'STACK'],
              page.items.map((r) => [r.id, r.kind, r.name, String(r.version), r.stackFqdn]),
            ),
      );
    });
  resources
    .command('show')
    .description('a resource: its manifest and where it stands')
    .argument('<resource>', 'the resource id')
    .addOption(outputOption())
    .action(async (resourceId: string, options: { output: string }) => {
      const resource = await (await context.api()).call<ResourceView>(`/v1/resources/${id(resourceId)}`);
      if (options.output === 'json') return context.out(JSON.stringify(resource, null, 2));
      const head = [
        ['id', resource.id],
        ['kind', resource.templateVersion ? `${resource.kind} ${resource.templateVersion}` : resource.kind],
        ['name', resource.name],
        ['stack', resource.stackFqdn],
        ['tenant', resource.tenant],
        ['version', String(resource.version)],
      ].filter(([, value]) => value);
      context.out(
        `${head.map(([key, value]) => `${`${key}:`.padEnd(10)}${value}`).join('\n')}\n---\n${(resource.manifest ?? '').trimEnd()}`,
      );
    });

  const state = program.command('state').description("a resource's stack state: what it holds, its versions, what changed");
  state
    .command('show')
    .description('the resources in the current state')
    .argument('<resource>', 'the resource id')
    .addOption(outputOption())
    .action(async (resourceId: string, options: { output: string }) => {
      const stack = await (
        await context.api()
      ).call<{ version: number | null; resources: StackResource[] }>(`/v1/resources/${id(resourceId)}/stack`);
      if (options.output === 'json') return context.out(JSON.stringify(stack, null, 2));
      context.out(`state version ${stack.version ?? 'none yet'}`);
      if (stack.resources.length > 0)
        context.out(
          table(
            ['TYPE', 'NAME', 'PROTECTED'],
            stack.resources.map((r) => [r.type, r.name, r.protect ? 'yes' : '']),
          ),
        );
    });
  state
    .command('versions')
    .description('every state version its jobs wrote, newest first')
    .argument('<resource>', 'the resource id')
    .addOption(outputOption())
    .action(async (resourceId: string, options: { output: string }) => {
      const page = await (
        await context.api()
      ).call<{ items: { version: number; operation: string; jobId: string; createdAt: string }[] }>(
        `/v1/resources/${id(resourceId)}/stack/versions`,
      );
      context.out(
        options.output === 'json'
          ? JSON.stringify(page, null, 2)
          : table(
              ['VERSION', 'OPERATION', 'JOB', 'WRITTEN'],
              page.items.map((v) => [String(v.version), v.operation, v.jobId, v.createdAt]),
            ),
      );
    });
  state
    .command('diff')
    .description('what changed between two versions (default: the latest against the one before)')
    .argument('<resource>', 'the resource id')
    .option('--from <version>', 'the older version (0: the empty stack)')
    .option('--to <version>', 'the newer version')
    .addOption(outputOption())
    .addHelpText('after', '\nExample:\n  pds state diff 6f1c… --from 2 --to 4')
    .action(async (resourceId: string, options: { from?: string; to?: string; output: string }) => {
      const query = new URLSearchParams();
      if (options.from !== undefined) query.set('from', options.from);
      if (options.to !== undefined) query.set('to', options.to);
      const diff = await (
        await context.api()
      ).call<{
        from: number;
        to: number;
        added: string[];
        removed: string[];
        changed: { urn: string; fields: string[] }[];
      }>(`/v1/resources/${id(resourceId)}/stack/diff?${query}`);
      if (options.output === 'json') return context.out(JSON.stringify(diff, null, 2));
      const lines = [
        `from version ${diff.from} to ${diff.to}`,
        ...diff.added.map((urn) => `+ ${urn}`),
        ...diff.removed.map((urn) => `- ${urn}`),
        ...diff.changed.map((c) => `~ ${c.urn} (${c.fields.join(', ')})`),
      ];
      if (lines.length === 1) lines.push('no changes');
      context.out(lines.join('\n'));
    });
}
