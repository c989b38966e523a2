import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import type { ApiClient } from '../api-client.js';
import type { Context } from '../context.js';
import { CliError, EXIT } from '../exit-codes.js';
import { outputOption, table } from '../output.js';

const id = (value: string) => encodeURIComponent(value);

/** What a template folder's `template.yaml` says (docs/cli.md, "Templates"). */
interface TemplateFile {
  name: string;
  version: string;
  description?: string;
  provider?: string;
  main?: string;
  parameters?: unknown;
  defaults?: unknown;
}

/** The program's files a version carries: .ts, .js and .json under the folder (not node_modules, not template.yaml). */
const PROGRAM_FILE = /\.(ts|js|json)$/;
const MAX_FILES = 100;

/** `pds templates`: browse the catalogue; make, push and publish a template of one's own. */
export function templateCommands(program: Command, context: Context): void {
  const templates = program.command('templates').description('the templates a manifest can name as its kind, and your own');
  templates
    .command('ls')
    .description('every template the caller can see, and whether its tenant may deploy it')
    .addOption(outputOption())
    .action(async (options: { output: string }) => {
      const page = await (
        await context.api()
      ).call<{ items: { name: string; source: string; version: string; provider: string; allowed?: boolean; description: string }[] }>(
        '/v1/templates',
      );
      context.out(
        options.output === 'json'
          ? JSON.stringify(page, null, 2)
          : table(
              ['NAME', 'VERSION', 'SOURCE', 'PROVIDER', 'ALLOWED', 'DESCRIPTION'],
              page.items.map((x) => [x.name, x.version, x.source, x.provider || 'none', x.allowed === false ? 'no' : 'yes', x.description]),
            ),
      );
    });
  templates
    .command('show')
    .description('a template: its readme and the parameters its manifests take')
    .argument('<name>', 'the template (a kind)')
    .addOption(outputOption())
    .action(async (name: string, options: { output: string }) => {
      const api = await context.api();
      const [template, schema] = await Promise.all([
        api.call<{ name: string; version: string; description: string; readme: string }>(`/v1/templates/${id(name)}`),
        api.call<unknown>(`/v1/templates/${id(name)}/schema`),
      ]);
      if (options.output === 'json') return context.out(JSON.stringify({ ...template, schema }, null, 2));
      context.out(
        `${template.name} ${template.version}: ${template.description}\n\n${template.readme.trim()}\n\nparameters (JSON Schema):\n${JSON.stringify(schema, null, 2)}`,
      );
    });
  templates
    .command('init')
    .description('make a template folder to start from: template.yaml, index.ts, README.md')
    .argument('<dir>', 'the folder to make (it must not exist)')
    .requiredOption('--name <name>', 'the template name manifests will give as their kind, e.g. Greeter')
    .addHelpText(
      'after',
      '\nExample:\n  pds templates init greeter --name Greeter && pds templates push greeter && pds templates publish Greeter 0.1.0',
    )
    .action(async (dir: string, options: { name: string }) => {
      if (!/^[A-Z][A-Za-z0-9]{0,99}$/.test(options.name))
        throw new CliError(
          `--name ${JSON.stringify(options.name)}: a template name starts with a capital letter, then letters and digits (it is a kind)`,
          EXIT.usage,
        );
      if (
        await stat(dir).then(
          () => true,
          () => false,
        )
      )
        throw new CliError(`${dir} exists already: give a new folder`, EXIT.usage);
      await mkdir(dir, { recursive: true });
      for (const [file, text] of Object.entries(scaffold(options.name))) await writeFile(join(dir, file), text);
      context.out(`made ${dir}: template.yaml, index.ts, README.md. Next: pds templates push ${dir}`);
    });
  templates
    .command('push')
    .description('upload a template folder as a draft version (made the first time, replaced while a draft)')
    .argument('<dir>', 'the template folder (template.yaml, the program, README.md)')
    .option('--tenant <tenant>', "the tenant that owns it (a platform token; without: the platform's)")
    .action(async (dir: string, options: { tenant?: string }) => {
      const { template, body } = await readTemplateFolder(dir);
      const api = await context.api();
      const tenant = options.tenant ? `?tenant=${id(options.tenant)}` : '';
      const created = await ensureTemplate(api, template, options.tenant);
      const versions = `/v1/templates/${id(template.name)}/versions`;
      try {
        await api.call(`${versions}${tenant}`, { method: 'POST', body: { version: template.version, ...body } });
        context.out(
          `${created ? 'made template ' + template.name + ', ' : ''}pushed ${template.name} ${template.version} (draft). Next: pds templates publish ${template.name} ${template.version}`,
        );
      } catch (err) {
        if (!(err instanceof CliError) || err.status !== 409) throw err;
        // That version exists: replaced while it is a draft (the API refuses anything else, and says why).
        await api.call(`${versions}/${id(template.version)}${tenant}`, { method: 'PUT', body });
        context.out(
          `replaced the draft ${template.name} ${template.version}. Next: pds templates publish ${template.name} ${template.version}`,
        );
      }
    });
  templates
    .command('publish')
    .description('run the publish checks (schema, compile, imports, version step, a smoke preview) and publish the version')
    .argument('<name>', 'the template')
    .argument('<version>', 'the draft version')
    .action(async (name: string, version: string) => {
      context.err(`checking ${name} ${version} (a smoke preview runs on a runner: this can take a minute)…`);
      await (await context.api()).call(`/v1/templates/${id(name)}/versions/${id(version)}/publish`, { method: 'POST', body: {} });
      context.out(`published ${name} ${version}: manifests of kind ${name} can use it`);
    });
}

/** The template a folder holds, as the API takes a version: its files, main, parameters, defaults, description and readme. */
async function readTemplateFolder(dir: string): Promise<{ template: TemplateFile; body: Record<string, unknown> }> {
  const manifestPath = join(dir, 'template.yaml');
  const text = await readFile(manifestPath, 'utf8').catch(() => {
    throw new CliError(`${manifestPath} is missing (pds templates init makes one)`, EXIT.usage);
  });
  let template: TemplateFile;
  try {
    template = parseYaml(text) as TemplateFile;
  } catch (err) {
    throw new CliError(`${manifestPath} is not valid YAML: ${(err as Error).message.split('\n')[0]}`, EXIT.usage);
  }
  for (const field of ['name', 'version'] as const)
    if (typeof template?.[field] !== 'string' || !template[field]) throw new CliError(`${manifestPath}: ${field} is missing`, EXIT.usage);
  const paths = (await listFiles(dir)).filter((path) => PROGRAM_FILE.test(path));
  if (paths.length === 0) throw new CliError(`${dir} holds no program (.ts, .js or .json files)`, EXIT.usage);
  if (paths.length > MAX_FILES) throw new CliError(`${dir} holds ${paths.length} program files: at most ${MAX_FILES}`, EXIT.usage);
  const files = await Promise.all(paths.map(async (path) => ({ path, content: await readFile(join(dir, path), 'utf8') })));
  const readme = await readFile(join(dir, 'README.md'), 'utf8').catch(() => undefined);
  const body = {
    files,
    ...(template.main ? { main: template.main } : {}),
    ...(template.parameters !== undefined ? { parameters: template.parameters } : {}),
    ...(template.defaults !== undefined ? { defaults: template.defaults } : {}),
    ...(template.description ? { description: template.description } : {}),
    ...(readme !== undefined ? { readme } : {}),
  };
  return { template, body };
}

/** Every file under `dir`, relative, but node_modules, dot folders and template.yaml. */
async function listFiles(dir: string, root = dir): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map(async (entry) => {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') return [];
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return listFiles(path, root);
      return entry.isFile() && entry.name !== 'template.yaml' ? [relative(root, path)] : [];
    }),
  );
  return nested.flat().sort();
}

/** Makes the template the first time (true); one that exists already is fine. */
async function ensureTemplate(api: ApiClient, template: TemplateFile, tenant: string | undefined): Promise<boolean> {
  try {
    await api.call('/v1/templates', {
      method: 'POST',
      body: {
        name: template.name,
        ...(template.description ? { description: template.description } : {}),
        ...(template.provider ? { provider: template.provider } : {}),
        ...(tenant ? { tenant } : {}),
      },
    });
    return true;
  } catch (err) {
    if (err instanceof CliError && err.status === 409) return false;
    throw err;
  }
}

/** A template to start from: one dynamic-provider resource whose text comes from the parameters. */
function scaffold(name: string): Record<string, string> {
  return {
    'template.yaml': `# A template: manifests of kind ${name} run this program (docs/api.md, "Uploaded templates").
name: ${name}
version: 0.1.0
description: A note made from a greeting
main: index.ts
# JSON Schema (draft-07) of a manifest's spec: what the deploy form asks and the API checks.
parameters:
  type: object
  additionalProperties: false
  required: [greeting]
  properties:
    greeting: { type: string, maxLength: 100 }
# The spec its smoke preview runs with when it is published.
defaults:
  greeting: hello
`,
    'index.ts': `import * as pulumi from '@pulumi/pulumi';
import { parse } from 'yaml';

interface Spec {
  greeting: string;
}
const spec = (parse(process.env.STACK_INPUT_YAML ?? '') as { target: { spec: Spec } }).target.spec;

const provider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: { text: string }) {
    return { id: \`note-\${inputs.text.length}\`, outs: { text: inputs.text } };
  },
};

class Note extends pulumi.dynamic.Resource {
  declare readonly text: pulumi.Output<string>;
  constructor(resourceName: string, text: string) {
    super(provider, resourceName, { text }, {});
  }
}

export const text = new Note('note', \`\${spec.greeting}, from ${name}\`).text;
`,
    'README.md': `# ${name}\n\nA note made from a greeting. Deploy it with a manifest of \`kind: ${name}\` and \`spec.greeting\`.\n`,
  };
}
