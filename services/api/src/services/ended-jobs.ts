/**
 * Views of ended jobs, kept in memory: a job never leaves a final status and its result is written
 * once, so its view never changes and reading it again needs no database round trip. Bounded, least
 * recently used first out.
 */
export class EndedJobCache<V> {
  private readonly views = new Map<string, V>();

  constructor(private readonly capacity = 10_000) {}

  get(id: string): V | undefined {
    const view = this.views.get(id);
    if (view !== undefined) {
      // Refresh its place: Map keeps insertion order, the oldest is evicted first.
      this.views.delete(id);
      this.views.set(id, view);
    }
    return view;
  }

  remember(id: string, view: V): void {
    this.views.set(id, view);
    if (this.views.size > this.capacity) this.views.delete(this.views.keys().next().value as string);
  }

  get size(): number {
    return this.views.size;
  }
}
