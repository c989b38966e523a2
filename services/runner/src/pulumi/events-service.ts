type Callback = (err: Error | null, value?: unknown) => void;

/**
 * Pulumi's `Events` gRPC service (what `--event-log tcp://…` streams to): each request carries one
 * engine event as JSON. Used by the program host and by the runner's own events server.
 */
export function eventsService(onEvent: (event: Record<string, unknown>) => void, Empty: new () => unknown) {
  return {
    streamEvents(call: NodeJS.EventEmitter, callback: Callback) {
      call.on('data', (request: { getEvent(): string }) => {
        try {
          onEvent(JSON.parse(request.getEvent()) as Record<string, unknown>);
        } catch {
          // an event that is not JSON is Pulumi's bug, not the job's: skip it
        }
      });
      call.on('end', () => callback(null, new Empty()));
      call.on('error', (err: Error) => callback(err));
    },
  };
}
