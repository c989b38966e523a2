/**
 * Benchmark clients in their own process, so the server under test does not share its event loop
 * with them. Commands over IPC: { cmd: 'connect', url, count } → { ready }; when every socket has
 * seen `end` → { done, p50, p99, delivered, seconds }; { cmd: 'close' } terminates the sockets.
 * Lines carry their send time as text `t=<epoch ms>`; both processes use performance.timeOrigin.
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { percentile } from './stats.js';

const now = () => performance.timeOrigin + performance.now();
let sockets: WebSocket[] = [];

process.on('message', async (command: { cmd: string; url?: string; count?: number }) => {
  if (command.cmd === 'close') {
    for (const socket of sockets) socket.terminate();
    sockets = [];
    process.send?.({ closed: true });
    return;
  }
  const latencies: number[] = [];
  let delivered = 0;
  let first = 0;
  let last = 0;
  let ended = 0;
  const count = command.count ?? 1;
  sockets = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<WebSocket>((resolve, reject) => {
          const socket = new WebSocket(command.url as string);
          socket.on('message', (data) => {
            const text = String(data);
            if (text.includes('"type":"end"')) {
              if (++ended === count) {
                process.send?.({
                  done: true,
                  p50: percentile(latencies, 50),
                  p99: percentile(latencies, 99),
                  delivered,
                  seconds: (last - first) / 1000,
                });
              }
              return;
            }
            const match = /t=(\d+(?:\.\d+)?)/.exec(text);
            if (!match) return;
            const at = now();
            first ||= at;
            last = at;
            delivered++;
            if (delivered % 7 === 0 || count === 1) latencies.push(at - Number(match[1]));
          });
          socket.once('open', () => resolve(socket));
          socket.once('error', reject);
        }),
    ),
  );
  process.send?.({ ready: true });
});
