import { isAbsolute, join, normalize, relative } from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { parse as parseYaml } from 'yaml';
import { LocalFile } from './local-file';

interface FileSpec {
  path: string;
  content: string;
  delayMs?: number;
}

interface LocalFileSetSpec {
  directory: string;
  files: FileSpec[];
}

/** Reads and checks the manifest the runner hands over in STACK_INPUT_YAML. */
function readSpec(): LocalFileSetSpec {
  const input = parseYaml(process.env.STACK_INPUT_YAML ?? '') as { target?: { spec?: Partial<LocalFileSetSpec> } } | null;
  const spec = input?.target?.spec;
  if (!spec) throw new Error('STACK_INPUT_YAML has no target.spec');
  if (typeof spec.directory !== 'string' || !isAbsolute(spec.directory)) {
    throw new Error('spec.directory must be an absolute path');
  }
  // The API checked this when the manifest was stored; the root may have moved since.
  const root = process.env.LOCAL_FILES_ROOT;
  if (root && relative(root, spec.directory).startsWith('..')) {
    throw new Error(`spec.directory ${spec.directory} is outside LOCAL_FILES_ROOT (${root})`);
  }
  if (!Array.isArray(spec.files)) throw new Error('spec.files must be a list of { path, content }');
  for (const [i, file] of spec.files.entries()) {
    if (typeof file?.path !== 'string' || typeof file.content !== 'string') {
      throw new Error(`spec.files[${i}] must have a string path and a string content`);
    }
    if (file.delayMs !== undefined && (!Number.isInteger(file.delayMs) || file.delayMs < 0)) {
      throw new Error(`spec.files[${i}].delayMs must be a non-negative integer`);
    }
    if (isAbsolute(file.path) || normalize(file.path).startsWith('..')) {
      throw new Error(`spec.files[${i}].path "${file.path}" must stay inside spec.directory`);
    }
  }
  return spec as LocalFileSetSpec;
}

/** Where the secret parameter spec.secret is written, inside spec.directory. */
const SECRET_FILE = '.secret';

/** The program: one LocalFile per entry of spec.files; exports the directory and content hashes. */
export default async function main() {
  const spec = readSpec();
  const files = spec.files.map(
    (file) =>
      new LocalFile(file.path, {
        path: join(spec.directory, normalize(file.path)),
        content: file.content,
        ...(file.delayMs ? { delayMs: file.delayMs } : {}),
      }),
  );
  // A secret parameter arrives as Pulumi secret config (the manifest it reads says "[secret]"); the
  // engine keeps it encrypted in the state and masked in every output.
  const secret = new pulumi.Config().getSecret('secret');
  if (secret && spec.files.some((file) => normalize(file.path) === SECRET_FILE)) {
    throw new Error(`spec.files: ${SECRET_FILE} is where spec.secret is written`);
  }
  // Its content and hash stay secret in the state (a hash of a short secret can be guessed).
  const secretFile = secret
    ? new LocalFile(
        SECRET_FILE,
        { path: join(spec.directory, SECRET_FILE), content: secret },
        { additionalSecretOutputs: ['content', 'sha256'] },
      )
    : undefined;
  return {
    directory: spec.directory,
    // The secret file's hash, a secret output: shown only to those who may see secrets (`?showSecrets`).
    ...(secretFile ? { secretFile: secretFile.path, secretSha256: secretFile.sha256 } : {}),
    // A list, not a map keyed by path: file names hold dots, which document stores refuse as keys.
    files: files.map((file, i) => ({ path: spec.files[i]?.path, sha256: file.sha256 })),
  };
}
