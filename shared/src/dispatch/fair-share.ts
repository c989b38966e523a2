/** What came of offering a tenant a start: a job started, or why none could (nothing waits, at its limit, every stack busy). */
export type Offer = { started: true } | { started: false; why: 'empty' | 'limit' | 'busy' };

/**
 * Weighted deficit round-robin over tenants (Shreedhar and Varghese, with one job as the unit):
 * each visit adds the tenant's weight to its credit, and each job it starts costs one; a tenant
 * that cannot start one (at its limit, its stacks busy) loses its credit, so it cannot save up a
 * burst. The turn and the credits carry over from one round to the next: slots that free one at a
 * time still go around the tenants in turn. Kept in the leading dispatcher's memory; a new leader
 * starts with fresh credits, which costs at most one turn of fairness.
 */
export class DeficitRoundRobin {
  private ring: string[] = [];
  private cursor = 0;
  private readonly credit = new Map<string, number>();
  /** Whether the tenant at the cursor has had this visit's weight. */
  private granted = false;

  /** The tenants with jobs waiting now: new ones join at the end of the turn, those gone leave it. */
  sync(waiting: readonly string[]): void {
    const now = new Set(waiting);
    const current = this.ring[this.cursor];
    this.ring = this.ring.filter((tenant) => now.has(tenant));
    for (const tenant of this.credit.keys()) if (!now.has(tenant)) this.credit.delete(tenant);
    for (const tenant of waiting) if (!this.ring.includes(tenant)) this.ring.push(tenant);
    const at = current === undefined ? -1 : this.ring.indexOf(current);
    if (at < 0) this.granted = false;
    this.cursor = at < 0 ? 0 : at;
  }

  /** Offers up to `budget` starts to the tenants in weighted turns; returns how many started. */
  async serve(budget: number, weightOf: (tenant: string) => number, offer: (tenant: string) => Promise<Offer>): Promise<number> {
    let started = 0;
    // Tenants in a row that could start nothing: once it is all of them, nobody can start anything now.
    let fruitless = 0;
    while (started < budget && this.ring.length > 0 && fruitless < this.ring.length) {
      this.cursor %= this.ring.length;
      const tenant = this.ring[this.cursor] as string;
      if (!this.granted) {
        this.credit.set(tenant, (this.credit.get(tenant) ?? 0) + Math.max(1, weightOf(tenant)));
        this.granted = true;
      }
      if ((this.credit.get(tenant) ?? 0) >= 1) {
        const result = await offer(tenant);
        if (result.started) {
          this.credit.set(tenant, (this.credit.get(tenant) ?? 0) - 1);
          started++;
          fruitless = 0;
          continue;
        }
        this.credit.delete(tenant);
        if (result.why === 'empty') {
          this.ring.splice(this.cursor, 1);
          this.granted = false;
          continue;
        }
        fruitless++;
      }
      // Its credit spent, or it could start nothing: the next tenant's turn.
      this.cursor++;
      this.granted = false;
    }
    return started;
  }

  /** The tenants in their turn's order, from the one whose turn it is (tests, and why a job waits). */
  get order(): string[] {
    return [...this.ring.slice(this.cursor), ...this.ring.slice(0, this.cursor)];
  }
}
