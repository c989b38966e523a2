/**
 * When each step of a job's run ended, in ms since the job was created: the runner's debug log
 * shows it ("job timeline"), and the runner bench's step table is made of it (docs/benchmarks.md).
 */
export class JobTimeline {
  readonly steps: { step: string; ms: number }[] = [];

  constructor(private readonly createdAt: number) {}

  mark(step: string): void {
    this.steps.push({ step, ms: Date.now() - this.createdAt });
  }
}
