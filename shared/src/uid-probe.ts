import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { once } from 'node:events';

/** What a uid must reach: paths it must read, and paths it must run (a file) or pass through (a folder). */
export interface UidReach {
  read: string[];
  execute: string[];
}

// Runs as the uid with an empty environment; its verdict is its first line.
const SCRIPT = `
const fs = require('node:fs');
const [read, execute] = JSON.parse(process.argv[1]);
for (const p of read) { try { fs.accessSync(p, fs.constants.R_OK); } catch { console.log('cannot read ' + p); process.exit(3); } }
for (const p of execute) { try { fs.accessSync(p, fs.constants.X_OK); } catch { console.log('cannot run ' + p); process.exit(3); } }`;

function probeCommand(reach: UidReach): string[] {
  return ['-e', SCRIPT, JSON.stringify([reach.read, reach.execute])];
}

function cannotSwitch(uid: number, err: unknown): string {
  return `cannot start a process as uid ${uid} (${(err as NodeJS.ErrnoException).code ?? err}): it takes root, or CAP_SETUID, CAP_SETGID and CAP_CHOWN`;
}

function verdict(uid: number, status: number | null, output: string): string | undefined {
  // The probe's own verdict is its first line (anything after it is noise from the environment).
  if (status !== 0) return `uid ${uid} ${output.trim().split('\n')[0] || `cannot run Node (${process.execPath})`}`;
  return undefined;
}

/**
 * Why a process cannot run as `uid` and reach `reach`, or undefined when it can: switching users
 * takes root (or CAP_SETUID + CAP_SETGID + CAP_CHOWN), and the uid must be able to run Node and
 * read, or run, each path. The one check the runner (before it takes slots) and the tests share.
 */
export async function uidReachProblem(uid: number, reach: UidReach): Promise<string | undefined> {
  let child;
  try {
    child = spawn(process.execPath, probeCommand(reach), { uid, gid: uid, env: {}, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    return cannotSwitch(uid, err);
  }
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk));
  const failed = once(child, 'error').then(([err]) => err as NodeJS.ErrnoException);
  // 'close', not 'exit': the verdict on stdout is read whole only once the pipes have closed.
  const exited = once(child, 'close').then(([code]) => code as number | null);
  const outcome = await Promise.race([failed, exited]);
  return typeof outcome === 'object' && outcome !== null ? cannotSwitch(uid, outcome) : verdict(uid, outcome, output);
}

/** uidReachProblem, blocking: for a decision taken once at start-up by synchronous code (the tests' isolation mode). */
export function uidReachProblemSync(uid: number, reach: UidReach): string | undefined {
  const probe: SpawnSyncReturns<string> = spawnSync(process.execPath, probeCommand(reach), {
    uid,
    gid: uid,
    env: {},
    cwd: '/',
    encoding: 'utf8',
  });
  return probe.error ? cannotSwitch(uid, probe.error) : verdict(uid, probe.status, probe.stdout + probe.stderr);
}
