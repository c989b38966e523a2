/** Small helpers for benchmark figures. */

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
