/**
 * Child process that hosts a Pulumi program for one job, the way the Automation API hosts inline
 * programs: it serves Pulumi's LanguageRuntime gRPC service (the CLI connects with `--client`, so
 * no `pulumi-language-nodejs` binary is needed) and the Events service (the CLI streams engine
 * events to it with `--event-log tcp://…`). Events go to the parent over IPC.
 *
 * Usage: node program-host.js <programDir>, with an IPC channel. It loads the SDK, says
 * { type: 'warm' }, and waits for { type: 'start', main, env } (the job's program file and its own
 * environment: STACK_INPUT_YAML, credentials). So a host can be started ahead of its job (a warm
 * host: see program-host-pool.ts) and a job need not wait for Node and the SDK to load.
 * Messages to the parent: { type: 'warm' }, { type: 'ready', languageAddress, eventsAddress } and
 * { type: 'event', event }. One host serves one job, then exits.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { eventsService } from './events-service.js';

const [programDir] = process.argv.slice(2);
if (!programDir || !process.send) {
  console.error('usage: program-host <programDir> (with an IPC channel)');
  process.exit(2);
}
let mainFile = '';
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

const MAX_MESSAGE = 400 * 1024 * 1024; // Pulumi's own limit for engine messages

// The server is up before the job arrives (it only reads the job's program when the CLI runs it),
// so a warm host answers `start` at once.
const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_MESSAGE });
server.addService(languageRpc.LanguageRuntimeService, new LanguageServer(program));
server.addService(
  eventsRpc.EventsService,
  eventsService((event) => send({ type: 'event', event }), Empty),
);
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err: Error | null, port: number) => {
  if (err) {
    console.error(`program host cannot listen: ${err.message}`);
    process.exit(1);
  }
  const address = `127.0.0.1:${port}`;
  process.on('message', (message: { type: string; main?: string; env?: Record<string, string> }) => {
    if (message.type !== 'start' || mainFile) return;
    mainFile = message.main ?? 'index.js';
    // The job's own environment, read by the program when it runs (not when the SDK loaded).
    Object.assign(process.env, message.env ?? {});
    send({ type: 'ready', languageAddress: address, eventsAddress: `tcp://${address}` });
  });
  send({ type: 'warm' });
});

// The parent owns our lifetime: when it goes away or asks us to stop, stop.
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
// SIGINT is for Pulumi (graceful cancel); the host lives until the CLI is done with it.
process.on('SIGINT', () => {});
