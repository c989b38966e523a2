import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LocalServer, startLocalFerretDb, startLocalRedis } from './local-deps.js';

/** The part of a tap Test the helpers need. */
export interface Teardowns {
  teardown(fn: () => unknown): void;
}

function dockerAnswers(): boolean {
  return Boolean(process.env.DOCKER_HOST) || existsSync('/var/run/docker.sock');
}

async function redisFromContainer(): Promise<LocalServer | undefined> {
  if (!dockerAnswers()) return undefined;
  try {
    const { RedisContainer } = await import('@testcontainers/redis');
    const container = await new RedisContainer('redis:7-alpine').start();
    return { url: container.getConnectionUrl(), port: container.getPort(), stop: async () => void (await container.stop()) };
  } catch {
    return undefined; // a Docker client without a running engine: fall back to a local server
  }
}

/**
 * A real Redis for a test: REDIS_URL if set, else a Redis container when a Docker engine answers,
 * else a private local redis-server. Stopped when `t` ends.
 */
export async function testRedis(t: Teardowns): Promise<string> {
  if (process.env.REDIS_URL) return process.env.REDIS_URL;
  const server = (await redisFromContainer()) ?? (await startLocalRedis());
  t.teardown(() => server.stop());
  return server.url;
}

/**
 * A real MongoDB wire server for a test: MONGO_URL if set, else a private FerretDB on a temporary
 * SQLite folder. Each call gets its own database, so tests never see each other's documents.
 */
export async function testMongo(t: Teardowns): Promise<string> {
  const database = `test-${randomUUID()}`;
  if (process.env.MONGO_URL) {
    const url = new URL(process.env.MONGO_URL);
    url.pathname = `/${database}`;
    return url.toString();
  }
  const dataDir = await mkdtemp(join(tmpdir(), 'pds-ferretdb-'));
  const server = await startLocalFerretDb({ dataDir, database });
  t.teardown(async () => {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  });
  return server.url;
}
