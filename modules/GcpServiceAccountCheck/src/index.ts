import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

/**
 * What a real GCP program would use, checked without a network: the key file the runner wrote
 * (GOOGLE_APPLICATION_CREDENTIALS, which Google's libraries read), its permissions, and the project.
 * Exports hashes, never the key, so a test can prove which credential arrived.
 */
export default async function main() {
  const path = process.env.GOOGLE_APPLICATION_CREDENTIALS;
  if (!path) throw new Error('GOOGLE_APPLICATION_CREDENTIALS is not set: the job has no gcp credential');
  const key = JSON.parse(readFileSync(path, 'utf8')) as { private_key: string; private_key_id: string; client_email: string };
  const input = parseYaml(process.env.STACK_INPUT_YAML ?? '') as { settings?: Record<string, string> } | null;
  // A careless program printing its secret: the runner must mask it in every line.
  console.log(`using key ${key.private_key_id} for ${key.client_email}`);
  return {
    keyFileMode: (statSync(path).mode & 0o777).toString(8),
    privateKeySha256: createHash('sha256').update(key.private_key).digest('hex'),
    clientEmail: key.client_email,
    project: process.env.GOOGLE_PROJECT ?? '',
    settings: input?.settings ?? {},
  };
}
