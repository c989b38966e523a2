/** Keeps the last lines of a stream within a character budget (for the job result's tails). */
export class Tail {
  private lines: string[] = [];
  private size = 0;

  constructor(private readonly maxChars = 16_384) {}

  push(line: string): void {
    this.lines.push(line);
    this.size += line.length + 1;
    while (this.size > this.maxChars && this.lines.length > 1) {
      this.size -= (this.lines.shift() as string).length + 1;
    }
  }

  toString(): string {
    const text = this.lines.join('\n');
    return text.length > this.maxChars ? text.slice(-this.maxChars) : text;
  }
}
