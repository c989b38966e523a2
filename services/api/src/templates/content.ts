import { posix } from 'node:path';
import { errors, type TemplateFile } from '@pds/shared';

/** Limits on what one version holds (a template is a program, not a data store). */
export const TEMPLATE_LIMITS = {
  files: 100,
  /** All files' text together, in bytes. */
  totalBytes: 1024 * 1024,
  pathLength: 200,
  /** The parameters schema and the defaults, each as JSON. */
  schemaBytes: 64 * 1024,
} as const;

const PATH = /^[A-Za-z0-9_][A-Za-z0-9_.-]*(\/[A-Za-z0-9_][A-Za-z0-9_.-]*)*\.(ts|js|json)$/;

/** Refuses (400, naming the file) paths that are not plain relative .ts/.js/.json paths, duplicates, and sizes past the limits. */
export function assertFiles(files: TemplateFile[], main: string): void {
  if (files.length === 0) throw errors.invalidRequest('files: a version needs at least one file');
  if (files.length > TEMPLATE_LIMITS.files)
    throw errors.invalidRequest(`files: at most ${TEMPLATE_LIMITS.files} files (got ${files.length})`);
  const seen = new Set<string>();
  let bytes = 0;
  for (const [index, file] of files.entries()) {
    const where = `files[${index}].path`;
    if (
      file.path.length > TEMPLATE_LIMITS.pathLength ||
      !PATH.test(file.path) ||
      posix.normalize(file.path) !== file.path ||
      file.path.split('/').includes('..')
    ) {
      throw errors.invalidRequest(
        `${where}: "${file.path.slice(0, 100)}" must be a relative path of letters, digits, _ . - and /, ending in .ts, .js or .json`,
      );
    }
    if (file.path.endsWith('.d.ts')) throw errors.invalidRequest(`${where}: declaration files (.d.ts) are not taken`);
    if (file.path.split('/')[0] === 'node_modules') throw errors.invalidRequest(`${where}: node_modules is the runners' (GET /v1/runtime)`);
    if (seen.has(file.path)) throw errors.invalidRequest(`${where}: ${file.path} appears twice`);
    seen.add(file.path);
    bytes += Buffer.byteLength(file.content);
  }
  if (bytes > TEMPLATE_LIMITS.totalBytes)
    throw errors.payloadTooLarge(`files: ${bytes} bytes in all, more than ${TEMPLATE_LIMITS.totalBytes}`);
  if (!/\.(ts|js)$/.test(main) || !seen.has(main)) throw errors.invalidRequest(`main: ${main} must be one of the .ts or .js files`);
}

/** A JSON value stored as text, within the size limit (400 naming the field). */
export function jsonText(field: string, value: unknown): string {
  const text = JSON.stringify(value);
  if (Buffer.byteLength(text) > TEMPLATE_LIMITS.schemaBytes) {
    throw errors.invalidRequest(`${field}: more than ${TEMPLATE_LIMITS.schemaBytes} bytes of JSON`);
  }
  return text;
}
