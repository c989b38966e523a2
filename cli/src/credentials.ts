import { randomUUID } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
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
  // Written 0600 under another name, then moved over the old file: never readable by others, even for a moment.
  const fresh = join(dir, `.credentials-${randomUUID()}`);
  await writeFile(fresh, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  await rename(fresh, path);
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
  const path = credentialsPath(env);
  const text = await readFile(path, 'utf8').catch(() => undefined);
  let saved: Partial<Credentials>;
  try {
    saved = text === undefined ? {} : (JSON.parse(text) as Partial<Credentials>);
  } catch {
    throw new CliError(`${path} is not what \`pds login\` writes: log in again`, EXIT.auth);
  }
  const url = trimSlash(env.PDS_URL || saved.url || '');
  // The saved token goes only to the server it was saved for, never to another PDS_URL.
  const token = (env.PDS_TOKEN || (saved.url && trimSlash(saved.url) === url ? saved.token : undefined) || '').trim();
  if (!url || !token) throw new CliError('not logged in: run `pds login <api-url>` (or set PDS_URL and PDS_TOKEN)', EXIT.auth);
  assertTokenShape(token);
  const gatewayUrl = env.PDS_GATEWAY_URL || (env.PDS_URL ? undefined : saved.gatewayUrl) || url;
  return { url, gatewayUrl: trimSlash(gatewayUrl), token };
}

/** A token is printable ASCII without spaces: anything else would end up quoted in an error message (a header it cannot be). */
export function assertTokenShape(token: string): void {
  if (!/^[\x21-\x7e]+$/.test(token))
    throw new CliError('the token holds spaces, line breaks or other characters no token has: check what was given', EXIT.auth);
}

export function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
