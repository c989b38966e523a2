import { createRequire } from 'node:module';
import type { EngineEvent } from './engine-events.js';
import { eventsService } from './events-service.js';

// Pulumi's own gRPC stack and protocol definitions, from the SDK the runner depends on; loaded once
// per runner process, when the first job needs them.
let sdk: { grpc: any; eventsRpc: any; Empty: new () => unknown } | undefined;
function loadSdk() {
  if (sdk) return sdk;
  const runnerRequire = createRequire(import.meta.url);
  const pulumiRequire = createRequire(runnerRequire.resolve('@pulumi/pulumi'));
  sdk = {
    grpc: pulumiRequire('@grpc/grpc-js'),
    eventsRpc: runnerRequire('@pulumi/pulumi/proto/events_grpc_pb'),
    Empty: pulumiRequire('google-protobuf/google/protobuf/empty_pb').Empty,
  };
  return sdk;
}

/**
 * An Events server inside the runner for one job whose operation runs no program (`refresh`,
 * `destroy`): the CLI streams its engine events here, and no program host process is started.
 */
export async function startEventsServer(onEvent: (event: EngineEvent) => void): Promise<{ eventsAddress: string; stop(): Promise<void> }> {
  const { grpc, eventsRpc, Empty } = loadSdk();
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 400 * 1024 * 1024 });
  server.addService(
    eventsRpc.EventsService,
    eventsService((event) => onEvent(event as EngineEvent), Empty),
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err: Error | null, bound: number) =>
      err ? reject(err) : resolve(bound),
    ),
  );
  return {
    eventsAddress: `tcp://127.0.0.1:${port}`,
    // Streams still open (a killed CLI) are cut; the job is over either way.
    stop: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())).then(() => server.forceShutdown()),
  };
}
