import type { Logger } from '@pds/shared';
import { resetSlot } from '../slots/slot-reset.js';
import type { Slot } from '../slots/slots.js';

/** How often the clean-up of a slot kept out of use is tried again. */
const SLOT_RETRY_MS = 30_000;

/**
 * Gives slots back after their jobs. A slot that could not be made clean (its uid's processes or
 * files) stays out of use, and its clean-up is tried again every SLOT_RETRY_MS until it succeeds.
 */
export class SlotQuarantine {
  private readonly kept = new Set<number>();

  constructor(
    private readonly workDir: string,
    private readonly logger: Logger,
    /** Hands a clean slot back to the pool. */
    private readonly giveBack: (slot: Slot) => void,
  ) {}

  /** Slots kept out of use now. */
  get size(): number {
    return this.kept.size;
  }

  release(slot: Slot): void {
    if (!slot.tainted || !slot.identity) return this.giveBack(slot);
    const identity = slot.identity;
    this.kept.add(slot.index);
    this.logger.error(
      { slot: slot.index, uid: identity.uid },
      'runner slot could not be cleaned after its job: kept out of use until it is',
    );
    const retry = () =>
      resetSlot(this.workDir, { ...slot, identity }).then(
        () => {
          this.kept.delete(slot.index);
          this.giveBack({ index: slot.index, identity });
          this.logger.info({ slot: slot.index, uid: identity.uid }, 'runner slot clean again');
        },
        () => void setTimeout(retry, SLOT_RETRY_MS).unref(),
      );
    setTimeout(retry, SLOT_RETRY_MS).unref();
  }
}
