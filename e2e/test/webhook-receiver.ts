import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  answered: number;
  at: number;
}

/** A receiver that answers 500 to its first `failFirst` requests, then 204; it keeps every request. */
export async function startReceiver(t: { teardown(fn: () => unknown): void }, failFirst: number) {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const answered = received.length < failFirst ? 500 : 204;
      received.push({ headers: req.headers, body, answered, at: Date.now() });
      res.statusCode = answered;
      res.end();
      server.emit('received');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  /** Resolves once a request accepted by the receiver matches. */
  const accepted = async (match: (r: Received, payload: { type: string; data: Record<string, any> }) => boolean, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = received.find((r) => r.answered === 204 && match(r, JSON.parse(r.body)));
      if (found) return found;
      if (Date.now() > deadline)
        throw new Error(`no such request arrived; got ${received.map((r) => (JSON.parse(r.body) as { type: string }).type).join(', ')}`);
      await Promise.race([once(server, 'received'), new Promise((r) => setTimeout(r, 1_000))]);
    }
  };
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, received, accepted };
}

/** The receiver's side of Standard Webhooks, written from the specification (not the service's code). */
export function verify(secret: string, r: Received): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const id = r.headers['webhook-id'] as string;
  const timestamp = Number(r.headers['webhook-timestamp']);
  if (!id || !Number.isInteger(timestamp) || Math.abs(Date.now() / 1000 - timestamp) > 300) return false;
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${r.body}`).digest('base64');
  return String(r.headers['webhook-signature'])
    .split(' ')
    .some((s) => s === `v1,${expected}`);
}
