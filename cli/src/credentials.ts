import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CliError, EXIT } from './exit-codes.js';

/** Where the service is and who is asking. */
export interface Credentials {
  /** The API's base URL. */
  url: string;
  /** The stream gateway's base URL (behind one ingress: the API's). */
  gatewayUrl: string;
  token: string;
}

/** The credentials file: in the XDG config folder, the user's alone (0600 in a 0700 folder). */
export function credentialsPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(base, 'pds', 'credentials.json');
}

/** Saves what `pds login` was given (never PDS_TOKEN / PDS_URL: those stay in the environment). */
export async function saveCredentials(credentials: Credentials, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const path = credentialsPath(env);
  const dir = join(path, '..');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  await writeFile(path, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  await chmod(path, 0o600);
  return path;
}

export async function forgetCredentials(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  await rm(credentialsPath(env), { force: true });
}

/**
 * The credentials to use: PDS_URL, PDS_GATEWAY_URL and PDS_TOKEN win over the saved file (a CI job
 * sets them); without a token from either: an auth error saying how to log in.
 */
export async function loadCredentials(env: NodeJS.ProcessEnv = process.env): Promise<Credentials> {
  const saved = await readFile(credentialsPath(env), 'utf8').then(
    (text) => JSON.parse(text) as Partial<Credentials>,
    () => ({}) as Partial<Credentials>,
  );
  const url = env.PDS_URL || saved.url;
  const token = env.PDS_TOKEN || saved.token;
  if (!url || !token) throw new CliError('not logged in: run `pds login <api-url>` (or set PDS_URL and PDS_TOKEN)', EXIT.auth);
  const gatewayUrl = env.PDS_GATEWAY_URL || (env.PDS_URL ? undefined : saved.gatewayUrl) || url;
  return { url: trimSlash(url), gatewayUrl: trimSlash(gatewayUrl), token };
}

export function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
