import { type Static, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';

const JobId = Type.String({ minLength: 1, maxLength: 64 });
const From = Type.Integer({ minimum: 0, description: 'Send messages with seq > from' });
/** A single-use stream ticket from the API's POST /v1/stream-tickets (browsers: no header on a WebSocket). */
const Ticket = Type.String({ minLength: 1, maxLength: 128 });

export const JobStreamParamsSchema = Type.Object({ id: JobId });
export const JobStreamQuerySchema = Type.Object(
  { from: Type.Optional(From), ticket: Type.Optional(Ticket) },
  { additionalProperties: false },
);
export const SocketQuerySchema = Type.Object({ ticket: Type.Optional(Ticket) }, { additionalProperties: false });

/** What a client may send on the multiplexed socket. */
export const ClientMessageSchema = Type.Union([
  Type.Object({ type: Type.Literal('subscribe'), jobId: JobId, from: Type.Optional(From) }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('unsubscribe'), jobId: JobId }, { additionalProperties: false }),
]);
export type ClientMessage = Static<typeof ClientMessageSchema>;

const clientMessage = TypeCompiler.Compile(ClientMessageSchema);

/** Parses and checks one client message; a string naming what is wrong when it is not valid. */
export function parseClientMessage(data: string): ClientMessage | string {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return 'messages must be JSON';
  }
  if (clientMessage.Check(value)) return value;
  const first = clientMessage.Errors(value).First();
  return `${first?.path || '(message)'}: ${first?.message ?? 'not a subscribe or unsubscribe message'} (send {"type":"subscribe","jobId":"…","from":N} or {"type":"unsubscribe","jobId":"…"})`;
}
