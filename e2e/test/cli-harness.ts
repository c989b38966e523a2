/** What the `pds` tests share: the built bin, and the services as a CI job's `pds` reaches them. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Config, createLogger, createRedis, repoRoot } from '@pds/shared';
import { buildGateway, SubscriptionHub } from '@pds/stream-gateway';
import type { Test } from 'tap';
import { startStack, TOKEN } from './harness.js';

export const BIN = join(repoRoot, 'cli/dist/src/main.js');

/**
 * The services with the API listening, a scratch folder as the CLI's home, and the environment a CI
 * job would give `pds` (the gateway: the stack's own, unless the test brings one).
 */
export async function servicesForCli(t: Test, prefix: string, overrides: Partial<Config> = {}) {
  const stack = await startStack(t, overrides);
  await stack.api.listen({ host: '127.0.0.1', port: 0 });
  const apiUrl = `http://127.0.0.1:${(stack.api.server.address() as { port: number }).port}`;
  const work = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: work,
    NO_COLOR: '1',
    PDS_URL: apiUrl,
    PDS_GATEWAY_URL: stack.gatewayUrl,
    PDS_TOKEN: TOKEN,
  };
  return { stack, work, env };
}

/** A stream gateway of the test's own on a fixed port, to stop and start again under a following CLI. */
export async function ownGateway(stack: Awaited<ReturnType<typeof startStack>>, port: number) {
  const logger = createLogger({ name: 'cli-test-gateway', level: 'silent' });
  const subscriber = createRedis(stack.config.REDIS_URL, 'subscriber', logger);
  const command = createRedis(stack.config.REDIS_URL, 'command', logger);
  const hub = new SubscriptionHub(subscriber, logger);
  const app = await buildGateway(stack.config, { models: stack.models, hub, redis: command, mongoPing: async () => undefined }, logger);
  await app.listen({ host: '127.0.0.1', port });
  return {
    port: (app.server.address() as { port: number }).port,
    async stop() {
      await app.close();
      subscriber.disconnect();
      command.disconnect();
    },
  };
}
