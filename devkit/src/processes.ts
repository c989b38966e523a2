import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, Socket } from 'node:net';

/** A free TCP port on the loopback interface. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Resolves once something accepts TCP connections on the port, or rejects after `timeoutMs`. */
export function waitForPort(port: number, timeoutMs = 15_000, child?: ChildProcess): Promise<void> {
  return waitForListener(`127.0.0.1:${port}`, () => new Socket().connect(port, '127.0.0.1'), timeoutMs, child);
}

/** Resolves once something accepts connections on the unix socket, or rejects after `timeoutMs`. */
export function waitForSocket(path: string, timeoutMs = 15_000, child?: ChildProcess): Promise<void> {
  return waitForListener(path, () => new Socket().connect(path), timeoutMs, child);
}

async function waitForListener(where: string, connect: () => Socket, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`process exited with ${child.exitCode} before listening on ${where}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect();
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${where} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A child process we started, and how to stop it. */
export interface Managed {
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/** Every child startProcess started and not yet seen exit: what killStartedProcesses ends. */
const started = new Set<ChildProcess>();

/** SIGKILLs every child startProcess started that still runs (a bench that gives up, before it exits). */
export function killStartedProcesses(): void {
  for (const child of started) child.kill('SIGKILL');
}

/**
 * Starts a long-running child; its output is kept (last 64 KiB) for the error message when it
 * dies early. `stop()` sends SIGTERM, then SIGKILL after 5 s.
 */
export function startProcess(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Managed {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  child.once('exit', () => started.delete(child));
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-65_536);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('error', (err) => {
    output += `\nspawn error: ${err.message}`;
  });
  Object.defineProperty(child, 'recentOutput', { get: () => output });
  let stopping: Promise<void> | undefined;
  return {
    child,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}

/** What a child printed lately (for error messages). */
export function recentOutput(managed: Managed): string {
  return (managed.child as ChildProcess & { recentOutput?: string }).recentOutput ?? '';
}
