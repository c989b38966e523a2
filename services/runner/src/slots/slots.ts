import { type UidReach, uidReachProblem } from '@pds/shared';
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
 * switch users, and the uid must be able to run Node and read, or run, each of `paths` (the Pulumi
 * CLI, the program host, the modules).
 */
export function isolationProblem(identity: Identity, paths: UidReach): Promise<string | undefined> {
  return uidReachProblem(identity.uid, paths);
}
