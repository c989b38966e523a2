/** Small helpers for benchmark figures, sizes and limits. */
import { killStartedProcesses } from '@pds/devkit';

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

export const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

/** Prints one comparison row: ours, the raw baseline measured in the same run, and their ratio. */
export function row(what: string, ours: number, raw: number, unit: string, goal: string): void {
  console.log(
    `${what.padEnd(46)} ${fmt(ours).padStart(10)} ${fmt(raw).padStart(10)} ${unit.padEnd(8)} ratio ${fmt(ours / raw).padStart(6)}   goal: ${goal}`,
  );
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `BENCH_SMOKE=1`: every bench at a tiny size (a few jobs, lines, clients), as the test suite runs
 * them to prove they still complete and print every figure (e2e/test/bench-smoke.test.ts). The
 * figures of a smoke run mean nothing.
 */
export const SMOKE = process.env.BENCH_SMOKE === '1';

/** A bench's size: `full` normally, `smoke` in a smoke run. */
export function sized(full: number, smoke: number): number {
  return SMOKE ? smoke : full;
}

let current = { bench: '', step: 'starting' };

/** Names what the running bench does now: said when it gives up. */
export function benchStep(step: string): void {
  current.step = step;
}

/**
 * Runs one bench within `limitSeconds` (a tenth of it in a smoke run, at least 120 s: a smoke run
 * shares a loaded CI machine, where the fairness smoke's 36 jobs took 43 s to over 60). Past it, the
 * bench gives up: it says in which step, the processes it started are killed and the run exits 1,
 * so a bench that hangs fails like a failing test instead of running until something kills it.
 */
export async function withinLimit(bench: string, limitSeconds: number, run: () => Promise<void>): Promise<void> {
  current = { bench, step: 'starting' };
  const seconds = SMOKE ? Math.max(120, limitSeconds / 10) : limitSeconds;
  const timer = setTimeout(() => {
    console.error(`\nbench ${bench} gave up after ${seconds} s, in step: ${current.step}`);
    killStartedProcesses();
    process.exit(1);
  }, seconds * 1000);
  try {
    await run();
  } catch (err) {
    console.error(`\nbench ${bench} failed in step: ${current.step}`);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
