import * as pulumi from '@pulumi/pulumi';

export interface LocalFileInputs {
  /** Absolute path of the file. */
  path: string;
  content: string;
  /** Wait this long before writing, like a slow cloud API (lets a demo or test watch a long run). */
  delayMs?: number;
}

interface LocalFileState extends LocalFileInputs {
  sha256: string;
}

/**
 * A dynamic provider that writes one file. Its methods are serialized into the Pulumi state and run
 * by the engine's dynamic-provider plugin, so they require what they use inside their bodies.
 */
const localFileProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: LocalFileInputs) {
    await new Promise((resolve) => setTimeout(resolve, inputs.delayMs ?? 0));
    const { mkdirSync, writeFileSync } = require('node:fs') as typeof import('node:fs');
    const { dirname } = require('node:path') as typeof import('node:path');
    const { createHash } = require('node:crypto') as typeof import('node:crypto');
    mkdirSync(dirname(inputs.path), { recursive: true });
    writeFileSync(inputs.path, inputs.content);
    const sha256 = createHash('sha256').update(inputs.content).digest('hex');
    return { id: inputs.path, outs: { ...inputs, sha256 } };
  },

  async diff(_id: string, olds: LocalFileState, news: LocalFileInputs) {
    const replaces = olds.path !== news.path ? ['path'] : [];
    const changes = replaces.length > 0 || olds.content !== news.content;
    return { changes, replaces, deleteBeforeReplace: true };
  },

  async update(_id: string, _olds: LocalFileState, news: LocalFileInputs) {
    await new Promise((resolve) => setTimeout(resolve, news.delayMs ?? 0));
    const { writeFileSync } = require('node:fs') as typeof import('node:fs');
    const { createHash } = require('node:crypto') as typeof import('node:crypto');
    writeFileSync(news.path, news.content);
    return { outs: { ...news, sha256: createHash('sha256').update(news.content).digest('hex') } };
  },

  async read(id: string, props: LocalFileState) {
    const { existsSync, readFileSync } = require('node:fs') as typeof import('node:fs');
    const { createHash } = require('node:crypto') as typeof import('node:crypto');
    if (!existsSync(id)) return { id: undefined as unknown as string, props: {} };
    const content = readFileSync(id, 'utf8');
    return { id, props: { ...props, content, sha256: createHash('sha256').update(content).digest('hex') } };
  },

  async delete(id: string) {
    const { rmSync } = require('node:fs') as typeof import('node:fs');
    rmSync(id, { force: true });
  },
};

/** One file on the local machine, managed by Pulumi. */
export class LocalFile extends pulumi.dynamic.Resource {
  declare readonly path: pulumi.Output<string>;
  declare readonly sha256: pulumi.Output<string>;

  constructor(name: string, args: { [K in keyof LocalFileInputs]: pulumi.Input<LocalFileInputs[K]> }, opts?: pulumi.CustomResourceOptions) {
    super(localFileProvider, name, { ...args, sha256: undefined }, opts);
  }
}
