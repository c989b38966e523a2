import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type Identity, ownFolder } from './ownership.js';

/*
 * A slot's folder is its jobs' HOME: the Pulumi home and the TMPDIR are in it, and all of it is the
 * slot uid's alone (0700). This is the one place that lays it out.
 */

/** The Pulumi home (PULUMI_HOME) in a slot's folder. */
export function pulumiHomeIn(slotDir: string): string {
  return join(slotDir, 'pulumi-home');
}

/** The TMPDIR in a slot's folder. */
export function tmpIn(slotDir: string): string {
  return join(slotDir, 'tmp');
}

/** Makes the slot's folder, its Pulumi home and its tmp (whichever are missing), and hands them to `identity`. */
export async function makeSlotHome(slotDir: string, identity: Identity | undefined): Promise<void> {
  await mkdir(pulumiHomeIn(slotDir), { recursive: true, mode: 0o700 });
  await mkdir(tmpIn(slotDir), { recursive: true, mode: 0o700 });
  if (identity) await ownFolder(slotDir, identity);
}
