import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Identity } from '../isolation/ownership.js';
import type { SlotSandbox } from '../sandbox/slot-sandbox.js';

/** A runner slot: one job at a time runs in it, as the slot's own uid (undefined: no isolation). */
export interface Slot {
  index: number;
  identity?: Identity;
  /** The slot's namespaces and cgroup (RUNNER_ISOLATION=sandbox). */
  sandbox?: SlotSandbox;
  /** Set when the slot could not be made clean after its job: it is not used again until it is. */
  tainted?: boolean;
}

/**
 * The runner's slots, one per job it may run at once. With isolation each slot has a uid of its
 * own (leased for the process, gid the same), so two jobs running side by side never share a uid,
 * and a job never runs as the runner.
 */
export class SlotPool {
  /** Free slots, the one released last at the end: taken first, its warm program host with it. */
  private readonly free: number[];
  private readonly withheld = new Set<number>();

  constructor(
    size: number,
    private readonly uids: readonly number[] | undefined,
    private readonly sandboxes?: ReadonlyMap<number, SlotSandbox>,
  ) {
    if (uids && uids.length < size) throw new Error(`${size} slots need ${size} uids, got ${uids.length}`);
    this.free = Array.from({ length: size }, (_, i) => size - 1 - i);
  }

  /**
   * Takes a free slot, or none while every slot is busy or being cleaned up. The slot released last
   * goes first: jobs one after another run in the same slot, whose program host is kept warm
   * (ProgramHostPool: about 240 ms of a job's start otherwise).
   */
  acquire(): Slot | undefined {
    const index = this.free.pop();
    if (index === undefined) return undefined;
    const uid = this.uids?.[index];
    if (uid === undefined) return { index };
    const sandbox = this.sandboxes?.get(uid);
    return { index, identity: { uid, gid: uid }, ...(sandbox ? { sandbox } : {}) };
  }

  release(slot: Slot): void {
    if (!this.free.includes(slot.index) && !this.withheld.has(slot.index)) this.free.push(slot.index);
  }

  /** Takes the slot of `uid` out of use for good (its uid is no longer this runner's alone). */
  withhold(uid: number): void {
    const index = this.uids?.indexOf(uid) ?? -1;
    if (index < 0) return;
    this.withheld.add(index);
    this.free.splice(0, this.free.length, ...this.free.filter((i) => i !== index));
  }
}

/**
 * Why a job could not run as `identity`, or undefined when it can: the runner must be able to
 * switch users (root, or CAP_SETUID + CAP_SETGID + CAP_CHOWN), and the uid must be able to run
 * Node and read, or run, each of `paths` (the Pulumi CLI, the program host, the modules).
 */
export async function isolationProblem(identity: Identity, paths: { read: string[]; execute: string[] }): Promise<string | undefined> {
  const script = `
const fs = require('node:fs');
const [read, execute] = JSON.parse(process.argv[1]);
for (const p of read) { try { fs.accessSync(p, fs.constants.R_OK); } catch { console.log('cannot read ' + p); process.exit(3); } }
for (const p of execute) { try { fs.accessSync(p, fs.constants.X_OK); } catch { console.log('cannot run ' + p); process.exit(3); } }`;
  let child;
  try {
    child = spawn(process.execPath, ['-e', script, JSON.stringify([paths.read, paths.execute])], {
      uid: identity.uid,
      gid: identity.gid,
      env: {},
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    return `cannot start a process as uid ${identity.uid} (${(err as NodeJS.ErrnoException).code ?? err}): the runner needs root, or CAP_SETUID, CAP_SETGID and CAP_CHOWN`;
  }
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk));
  const failed = once(child, 'error').then(([err]) => err as NodeJS.ErrnoException);
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const outcome = await Promise.race([failed, exited]);
  if (typeof outcome === 'object' && outcome !== null) {
    return `cannot start a process as uid ${identity.uid} (${outcome.code}): the runner needs root, or CAP_SETUID, CAP_SETGID and CAP_CHOWN`;
  }
  // The probe's own verdict is its first line (anything after it is noise from the environment).
  if (outcome !== 0) return `uid ${identity.uid} ${output.trim().split('\n')[0] || `cannot run Node (${process.execPath})`}`;
  return undefined;
}
