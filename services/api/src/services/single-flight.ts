interface Next<V> {
  promise: Promise<V>;
  resolve: (value: V) => void;
  reject: (err: unknown) => void;
  read: () => Promise<V>;
}

/**
 * Shares reads of one key among concurrent callers: a hundred consoles polling one running job cost
 * a read or two of the store and Redis, not a hundred. A caller never gets a read that started
 * before it asked (a client that cancels a job and reads it back sees the cancel): one arriving
 * while a read is under way waits for the next read, which every caller arriving meanwhile shares.
 * Nothing is kept once the reads settle.
 */
export class SingleFlight<V> {
  /** Keys being read, each with the read queued after the current one, if anyone asked meanwhile. */
  private readonly flights = new Map<string, { next?: Next<V> }>();

  run(key: string, read: () => Promise<V>): Promise<V> {
    const flight = this.flights.get(key);
    if (!flight) {
      this.flights.set(key, {});
      return this.fly(key, read);
    }
    if (!flight.next) {
      let resolve!: (value: V) => void;
      let reject!: (err: unknown) => void;
      const promise = new Promise<V>((res, rej) => ((resolve = res), (reject = rej)));
      flight.next = { promise, resolve, reject, read };
    }
    return flight.next.promise;
  }

  private fly(key: string, read: () => Promise<V>): Promise<V> {
    let reading: Promise<V>;
    try {
      reading = read();
    } catch (err) {
      // A read that throws at once still settles its flight (and frees the key).
      reading = Promise.reject(err as Error);
    }
    return reading.finally(() => {
      const flight = this.flights.get(key);
      const next = flight?.next;
      if (!flight || !next) {
        this.flights.delete(key);
        return;
      }
      flight.next = undefined;
      this.fly(key, next.read).then(next.resolve, next.reject);
    });
  }
}
