/**
 * Child process that hosts a Pulumi program for one job, the way the Automation API hosts inline
 * programs: it serves Pulumi's LanguageRuntime gRPC service (the CLI connects with `--client`, so
 * no `pulumi-language-nodejs` binary is needed) and the Events service (the CLI streams engine
 * events to it with `--event-log tcp://…`). Events go to the parent over IPC.
 *
 * Usage: node program-host.js <programDir> <mainFile>, with an IPC channel.
 * Messages to the parent: { type: 'ready', languageAddress, eventsAddress } and { type: 'event', event }.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';

type Callback = (err: Error | null, value?: unknown) => void;

const [programDir, mainFile] = process.argv.slice(2);
if (!programDir || !mainFile || !process.send) {
  console.error('usage: program-host <programDir> <mainFile> (with an IPC channel)');
  process.exit(2);
}
const send = (message: unknown) => process.send?.(message);

// The program and the language server must share one @pulumi/pulumi instance (it keeps the run's
// settings in module state), so resolve everything from the program's directory.
const programRequire = createRequire(join(programDir, 'package.json'));
const pulumiRequire = createRequire(programRequire.resolve('@pulumi/pulumi'));
const grpc = pulumiRequire('@grpc/grpc-js');
const { LanguageServer } = programRequire('@pulumi/pulumi/automation/server');
const languageRpc = programRequire('@pulumi/pulumi/proto/language_grpc_pb');
const eventsRpc = programRequire('@pulumi/pulumi/proto/events_grpc_pb');
const { Empty } = pulumiRequire('google-protobuf/google/protobuf/empty_pb');

/** Runs the program the way the Node.js language host does: a default-exported function's result, or the module's exports, become the stack outputs. */
async function program(): Promise<Record<string, unknown>> {
  const mod = programRequire(join(programDir as string, mainFile as string));
  if (typeof mod?.default === 'function') return (await mod.default()) ?? {};
  if (typeof mod === 'function') return (await mod()) ?? {};
  const { __esModule: _, ...exports } = mod ?? {};
  return exports;
}

const eventsService = {
  streamEvents(call: NodeJS.EventEmitter, callback: Callback) {
    call.on('data', (request: { getEvent(): string }) => {
      try {
        send({ type: 'event', event: JSON.parse(request.getEvent()) });
      } catch {
        // an event that is not JSON is Pulumi's bug, not the job's: skip it
      }
    });
    call.on('end', () => callback(null, new Empty()));
    call.on('error', (err: Error) => callback(err));
  },
};

const MAX_MESSAGE = 400 * 1024 * 1024; // Pulumi's own limit for engine messages
const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_MESSAGE });
server.addService(languageRpc.LanguageRuntimeService, new LanguageServer(program));
server.addService(eventsRpc.EventsService, eventsService);
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err: Error | null, port: number) => {
  if (err) {
    console.error(`program host cannot listen: ${err.message}`);
    process.exit(1);
  }
  const address = `127.0.0.1:${port}`;
  send({ type: 'ready', languageAddress: address, eventsAddress: `tcp://${address}` });
});

// The parent owns our lifetime: when it goes away or asks us to stop, stop.
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
// SIGINT is for Pulumi (graceful cancel); the host lives until the CLI is done with it.
process.on('SIGINT', () => {});
