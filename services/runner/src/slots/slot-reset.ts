import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Identity } from '../isolation/ownership.js';
import { makeSlotHome } from '../isolation/slot-home.js';
import type { Slot } from './slots.js';
import { mapBounded, SCAN_CONCURRENCY } from '../isolation/bounded.js';
import { killProcessesOf } from '../isolation/uid-leases.js';

/** The world-writable folders a job's uid may leave files in, outside its own. */
const SHARED_TEMP = ['/tmp', '/var/tmp', '/dev/shm'];

/**
 * A slot's folder (the job's HOME): its Pulumi home and its TMPDIR are in it. Named after its uid
 * when isolated (a folder only ever belongs to one uid), else after its index.
 */
export function slotFolder(workDir: string, slot: Slot): string {
  return join(workDir, 'slots', slot.identity ? `uid-${slot.identity.uid}` : String(slot.index));
}

/**
 * Makes a slot as new for its next job: every process of its uid killed, its folder emptied (a new
 * Pulumi home and tmp, the uid's alone), and what the uid left in the shared temp folders removed,
 * so that nothing one job planted (a daemon, a plugin, a dotfile, a temp file) reaches the next.
 * Runs after each job and when a runner takes a uid (a crashed runner's job may have left anything).
 * The uid runs nothing once killed, so nothing it owns changes under the removal.
 */
export async function resetSlot(workDir: string, slot: Slot & { identity: Identity }): Promise<void> {
  // Sandboxed: the slot's cgroup is killed whole (nothing forks its way out of it) and made anew.
  await slot.sandbox?.reset();
  await killProcessesOf(slot.identity);
  const dir = slotFolder(workDir, slot);
  await rm(dir, { recursive: true, force: true });
  await makeSlotHome(dir, slot.identity);
  // Many entries at once (one after another, each waits its turn on a busy event loop), within a bound.
  const entries = await Promise.all(
    SHARED_TEMP.map(async (shared) => (await readdir(shared).catch(() => [] as string[])).map((name) => join(shared, name))),
  );
  await mapBounded(entries.flat(), SCAN_CONCURRENCY, async (path) => {
    // lstat: a link the uid left is removed as a link, never followed.
    const found = await lstat(path).catch(() => undefined);
    if (found?.uid === slot.identity.uid) await rm(path, { recursive: true, force: true });
  });
}
