/**
 * One real deployment end to end: starts the embedded default (local Redis, local FerretDB, the
 * three services), submits examples/local-file-set.yaml, prints the live lines from the WebSocket,
 * then the job's outputs, and lists the files the real `pulumi up` created.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { repoRoot } from '@pds/shared';
import WebSocket from 'ws';
import { parse, stringify } from 'yaml';
import { startLocalDeployment } from '@pds/devkit';

// Inside the launcher's LOCAL_FILES_ROOT (.data/files): LocalFileSet writes nowhere else.
const demoDir = join(repoRoot, '.data', 'files', 'demo');

async function call(base: string, token: string, method: string, path: string, body?: unknown, contentType = 'application/json') {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': contentType }) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const json = (await response.json()) as Record<string, any>;
  return { status: response.status, json };
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)));
}

const deployment = await startLocalDeployment();
const token = deployment.env.ADMIN_TOKEN as string;
try {
  const manifest = parse(await readFile(join(repoRoot, 'examples/local-file-set.yaml'), 'utf8'));
  manifest.spec.directory = demoDir;
  const yaml = stringify(manifest);

  let resource = await call(deployment.apiUrl, token, 'POST', '/v1/resources', yaml, 'application/yaml');
  if (resource.status === 409) {
    // Already there from an earlier run (the data persists in .data/): replace its manifest.
    const list = await call(deployment.apiUrl, token, 'GET', `/v1/resources?kind=${manifest.kind}`);
    const existing = list.json.items.find((r: { name: string }) => r.name === manifest.metadata.name);
    resource = await call(deployment.apiUrl, token, 'PUT', `/v1/resources/${existing.id}`, yaml, 'application/yaml');
  }
  if (resource.status >= 300) throw new Error(`resource not accepted: ${JSON.stringify(resource.json)}`);
  console.log(`resource ${resource.json.id} (${resource.json.kind} ${resource.json.name}, stack ${resource.json.stackFqdn})`);

  const job = await call(deployment.apiUrl, token, 'POST', `/v1/resources/${resource.json.id}/jobs`, { operation: 'up' });
  if (job.status !== 202) throw new Error(`job not accepted: ${JSON.stringify(job.json)}`);
  console.log(`job ${job.json.id}: ${job.json.operation} ${job.json.status}\n--- live output ---`);

  await new Promise<void>((resolve, reject) => {
    const socket = new WebSocket(`${deployment.gatewayUrl}/v1/jobs/${job.json.id}/stream?from=0`, {
      headers: { authorization: `Bearer ${token}` },
    });
    socket.on('message', (data) => {
      const message = JSON.parse(String(data));
      if (message.type === 'line') console.log(`${String(message.seq).padStart(4)} | ${message.text}`);
      else if (message.type === 'event' && message.event.kind === 'resource') {
        console.log(`${String(message.seq).padStart(4)} * ${message.event.op} ${message.event.state}: ${message.event.urn}`);
      } else if (message.type === 'end') console.log(`--- end: ${message.status} (exit code ${message.exitCode}) ---`);
    });
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });

  const done = await call(deployment.apiUrl, token, 'GET', `/v1/jobs/${job.json.id}`);
  console.log(`status: ${done.json.status}`);
  console.log(`outputs: ${JSON.stringify(done.json.result?.outputs, null, 2)}`);
  console.log(`summary: ${JSON.stringify(done.json.result?.summary)}`);
  if (done.json.result?.error) console.log(`error: ${done.json.result.error}`);
  console.log(`files in ${demoDir}:`);
  for (const file of await listFiles(demoDir)) console.log(`  ${file}`);
  process.exitCode = done.json.status === 'succeeded' ? 0 : 1;
} finally {
  await deployment.stop();
}
