import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  type Deployment,
  holdsPulumiSecret,
  type Operation,
  secretOutputNames,
  STATE_MAX_JSON_BYTES,
  stackOutputs as stackOutputsInState,
} from '@pds/shared';
import { execa } from 'execa';
import { type EngineEvent, errorMessageOf, stackOutputsOf } from './engine-events.js';
import { killTree } from './kill-tree.js';
import { startEventsServer } from './events-server.js';
import { forkProgramHost, type ProgramHostPool } from './program-host-pool.js';
import {
  type JobOptions,
  operationArgs,
  PLAN_FILE,
  RESTORE_FILE,
  runsProgram,
  SCRATCH_BACKEND_DIR,
  writesState,
} from './operation-args.js';
import { exportDeployment } from './state-export.js';
import { type Identity, ownFolder, readJobFile } from '../isolation/ownership.js';
import { killProcessesOf } from '../isolation/uid-leases.js';
import { makeSlotHome, tmpIn } from '../isolation/slot-home.js';
import { type JobCommand, JobProcesses } from '../sandbox/job-sandbox.js';
import { sandboxedPid } from '../sandbox/command.js';
import type { SlotSandbox } from '../sandbox/slot-sandbox.js';

export interface PulumiRunSpec {
  pulumiBin: string;
  pulumiHome: string;
  backendUrl: string;
  /** Names of further runner environment variables a job's processes get (JOB_ENV_ALLOW: the state backend's). */
  jobEnvAllow?: string[];
  passphrase: string;
  programDir: string;
  main: string;
  /** The Pulumi project of the program (Pulumi.yaml `name`). */
  project: string;
  /** A folder of the job's own; the CLI runs there, so nothing is written into the program directory. */
  workspaceDir: string;
  stackFqdn: string;
  operation: Operation;
  options: JobOptions;
  /** Extra environment for the program and the CLI (STACK_INPUT_YAML, provider credentials). */
  env: Record<string, string>;
  /** restore: the deployment to import (JSON text), written into the workspace as RESTORE_FILE. */
  restoreDeployment?: string;
  /**
   * A restore's preview: the deployment (JSON text) to preview against. It is put in a scratch
   * `file://` backend in the workspace (SCRATCH_BACKEND_DIR), which the run uses instead of
   * `backendUrl`: the stack's own state is neither read nor written, and goes with the workspace.
   */
  scratchDeployment?: string;
  /** An up that applies an approved update plan (its JSON text): written as PLAN_FILE, run with `--plan`. */
  updatePlan?: string;
  /** Whether to read the secret outputs after the run (only when they can be sealed and are kept). */
  readSecretOutputs?: boolean;
  /** The template's secret parameters, set as the stack's secret config before the program runs (values on stdin, never in a command line). */
  secretConfig?: Record<string, string>;
  /** Clear Pulumi's own lock on the stack first (a lost run left it; we hold the stack's lock). */
  clearStaleLock?: boolean;
  /** Aborting sends SIGINT (Pulumi's graceful cancel), then SIGKILL after `graceMs`. */
  signal: AbortSignal;
  graceMs: number;
  /**
   * Whether, after a forced kill, Pulumi's lock may be cleared now: only while our stack lock still
   * proves no other run holds the stack (false once it was lost). Default: yes.
   */
  mayClearLock?(): boolean;
  /** Each output line; a returned promise asks for no more lines until it settles (backpressure). */
  onLine(stream: 'stdout' | 'stderr', text: string): Promise<void> | void;
  onEvent(event: EngineEvent): void;
  /** Called when the job's first Pulumi process has been started. */
  onSpawn?(): void;
  /** Told as each step of the run ends (the job's timeline). */
  onStep?(step: string): void;
  /** Warm program hosts to take from (without one, each run starts its host itself). */
  hosts?: ProgramHostPool;
  /**
   * The uid and gid every process of the job runs as (its runner slot's); the workspace, Pulumi
   * home and state must be theirs already. Undefined: the runner's own (RUNNER_ISOLATION=none).
   */
  identity?: Identity;
  /**
   * The slot's sandbox (RUNNER_ISOLATION=sandbox): every process of the job runs in it, seeing its
   * own folders only: `handed` (its stack's state, its local folders) and `secretsDir` beside its
   * workspace and home.
   */
  sandbox?: { slot: SlotSandbox; handed: readonly string[]; secretsDir: string };
}

export interface PulumiRunResult {
  exitCode: number | null;
  /** True when the run ended because the signal was aborted. */
  aborted: boolean;
  outputs: Record<string, unknown>;
  summary: Record<string, number>;
  /** Pulumi's own error diagnostics, when it reported any. */
  errors: string[];
  /** Killed, and Pulumi's lock could not be cleared (mayClearLock said no): the stack needs repair. */
  lockLeft: boolean;
  /** The stack's deployment after an up, refresh or destroy (JSON text), when it could be read. */
  deployment?: string;
  /** A preview with `savePlan` that succeeded: the update plan Pulumi saved (JSON text). */
  savedPlan?: string;
  /**
   * The stack outputs of `deployment` that hold secrets, in plain text (`pulumi stack output
   * --show-secrets`), to be sealed at once: never printed, logged or published.
   */
  secretOutputs?: Record<string, unknown>;
}

/**
 * What a job's processes may take from the runner's environment: the system basics (locale, time
 * zone, temp folder, CA bundles, proxies) and the state backend's own settings. Nothing else: a job's
 * programs are code of the platform's users, and the runner's environment is the service's.
 */
const SYSTEM_VARIABLES = [
  'PATH',
  'HOME',
  'LANG',
  'LANGUAGE',
  'TZ',
  'TMPDIR',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'NODE_EXTRA_CA_CERTS',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'http_proxy',
  'https_proxy',
  'no_proxy',
];
/** The state backend's settings a job needs to reach its stack (a Pulumi Cloud token; others via JOB_ENV_ALLOW). */
const BACKEND_VARIABLES = ['PULUMI_ACCESS_TOKEN'];

/** The runner's environment cut down to the allow-list: what a job's processes start from. */
export function inheritedEnvironment(env: NodeJS.ProcessEnv = process.env, extraVariables: string[] = []): Record<string, string> {
  const allowed = new Set([...SYSTEM_VARIABLES, ...BACKEND_VARIABLES, ...extraVariables]);
  return Object.fromEntries(
    Object.entries(env).filter(
      (entry): entry is [string, string] => entry[1] !== undefined && (allowed.has(entry[0]) || entry[0].startsWith('LC_')),
    ),
  );
}

/** The environment every Pulumi process of a job gets: pinned, offline, headless. */
function pulumiEnv(spec: PulumiRunSpec): Record<string, string> {
  return { ...baseEnv(spec), ...spec.env };
}

/** What every job of the same program and runner shares (a warm host is started with it). */
function baseEnv(spec: PulumiRunSpec): Record<string, string> {
  // The dynamic-provider plugin starts in the CLI's folder and must find the program's @pulumi/pulumi.
  const sdk = createRequire(join(spec.programDir, 'package.json')).resolve('@pulumi/pulumi/package.json');
  const nodeModules = dirname(dirname(dirname(sdk)));
  return {
    ...inheritedEnvironment(process.env, spec.jobEnvAllow),
    NODE_PATH: [nodeModules, process.env.NODE_PATH].filter(Boolean).join(delimiter),
    // The dynamic-provider launcher sits next to the pulumi binary.
    PATH: [dirname(spec.pulumiBin), process.env.PATH ?? ''].join(delimiter),
    PULUMI_HOME: spec.pulumiHome,
    // Not the runner's home: the slot's own folder (the Pulumi home's parent), the same for every job of the slot.
    HOME: dirname(spec.pulumiHome),
    // A slot uid has no passwd entry: Go's user lookup (the CLI is built without cgo) falls back to $USER.
    ...(spec.identity ? { USER: `pulumi-job-${spec.identity.uid}`, LOGNAME: `pulumi-job-${spec.identity.uid}` } : {}),
    // Temp files in the slot's own folder (emptied after each job), not in the shared /tmp.
    ...(spec.identity ? { TMPDIR: tmpIn(dirname(spec.pulumiHome)) } : {}),
    PULUMI_BACKEND_URL: spec.backendUrl,
    PULUMI_CONFIG_PASSPHRASE: spec.passphrase,
    PULUMI_SKIP_UPDATE_CHECK: 'true',
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: 'true',
    // --event-log is only registered when debug commands are on (the Automation API sets it too).
    PULUMI_DEBUG_COMMANDS: 'true',
    PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: 'true',
  };
}

/**
 * Reads a stream line by line. When `onLine` returns a promise, reading pauses until it settles:
 * the pipe fills and the writer (Pulumi) waits, instead of lines piling up in memory.
 */
function forwardLines(stream: Readable | null | undefined, onLine: (text: string) => Promise<void> | void): Promise<void> {
  if (!stream) return Promise.resolve();
  const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  let paused = false;
  lines.on('line', (text) => {
    const wait = onLine(text);
    if (!wait || paused) return;
    paused = true;
    lines.pause();
    void wait.finally(() => {
      paused = false;
      lines.resume();
    });
  });
  return once(lines, 'close').then(() => undefined);
}

/** Where the CLI finds the program (up, preview) and sends its engine events, and how to stop it. */
interface JobEndpoints {
  languageAddress?: string;
  eventsAddress: string;
  stop(): Promise<void>;
}

/** Takes (or starts) the job's program host, hands it the job, and waits for its addresses. */
async function startProgramHost(spec: PulumiRunSpec, onEvent: (event: EngineEvent) => void): Promise<JobEndpoints> {
  // The program needs neither the stack's backend nor its passphrase (the CLI holds both): leaving
  // them out keeps secrets from the program and lets a warm host serve any stack of its slot.
  const { PULUMI_BACKEND_URL: _backend, PULUMI_CONFIG_PASSPHRASE: _passphrase, ...env } = baseEnv(spec);
  const sandbox = spec.sandbox && { slot: spec.sandbox.slot, secretsRoot: dirname(spec.sandbox.secretsDir) };
  const child = await (spec.hosts
    ? spec.hosts.take(spec.programDir, env, spec.identity, sandbox)
    : forkProgramHost(spec.programDir, env, spec.identity, sandbox));
  // What the program itself prints (console.log) is part of the job's output.
  void forwardLines(child.stdout, (text) => spec.onLine('stdout', text));
  void forwardLines(child.stderr, (text) => spec.onLine('stderr', text));
  child.on('message', (message: { type: string; event?: EngineEvent }) => {
    if (message.type === 'event' && message.event) onEvent(message.event);
  });
  const ready = await new Promise<{ languageAddress: string; eventsAddress: string }>((resolve, reject) => {
    const onMessage = (message: { type: string; languageAddress: string; eventsAddress: string }) => {
      if (message.type === 'ready') {
        child.off('exit', onExit);
        resolve(message);
      }
    };
    const onExit = (code: number | null) => reject(new Error(`program host exited with code ${code} before it was ready`));
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.send({ type: 'start', main: spec.main, env: spec.env });
  });
  return { ...ready, stop: () => stopProgramHost(child) };
}

async function stopProgramHost(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

/** A Pulumi CLI process of the job: its command line (in the job's sandbox, if any) and the uid it runs as. */
function cli(spec: PulumiRunSpec, args: readonly string[]): JobCommand {
  return jobProcess(spec, spec.pulumiBin, args);
}

/** A process of the job, with the view of the machine and the uid its CLI has. */
function jobProcess(spec: PulumiRunSpec, file: string, args: readonly string[]): JobCommand {
  const folders = {
    pulumiHome: spec.pulumiHome,
    workspaceDir: spec.workspaceDir,
    programDir: spec.programDir,
    secretsDir: spec.sandbox?.secretsDir ?? '',
    handed: spec.sandbox?.handed ?? [],
  };
  return new JobProcesses(folders, spec.identity, spec.sandbox?.slot).cli(file, args);
}

/** Stacks this process has seen exist (backend URL + FQDN), so `stack select --create` runs once per stack. */
const knownStacks = new Set<string>();

/** Makes sure the stack exists before an operation that may be its first (`up`, `preview`). */
async function ensureStack(spec: PulumiRunSpec, env: Record<string, string>): Promise<void> {
  const key = `${spec.backendUrl} ${spec.stackFqdn}`;
  if (knownStacks.has(key)) return;
  const select = cli(spec, ['stack', 'select', '--create', '--stack', spec.stackFqdn, '--non-interactive']);
  const selecting = execa(select.file, select.args, {
    cwd: spec.workspaceDir,
    env,
    extendEnv: false,
    ...select.user,
    reject: false,
    cancelSignal: spec.signal,
  });
  spec.onSpawn?.();
  const result = await selecting;
  if (result.exitCode !== 0) {
    for (const line of `${result.stdout}\n${result.stderr}`.split('\n').filter(Boolean)) spec.onLine('stderr', line);
  } else {
    knownStacks.add(key);
  }
}

/**
 * Sets each secret parameter as the stack's secret config in the job's workspace (Pulumi encrypts it
 * with the stack's secrets provider). The value goes on stdin: a command line is readable by every
 * process of the machine.
 */
async function setSecretConfig(spec: PulumiRunSpec, env: Record<string, string>): Promise<void> {
  for (const [key, value] of Object.entries(spec.secretConfig ?? {})) {
    const set = cli(spec, ['config', 'set', '--secret', key, '--stack', spec.stackFqdn, '--non-interactive']);
    const result = await execa(set.file, set.args, {
      cwd: spec.workspaceDir,
      env,
      extendEnv: false,
      ...set.user,
      input: value,
      reject: false,
      cancelSignal: spec.signal,
    });
    if (result.exitCode !== 0)
      throw new Error(`the secret parameter ${key} could not be set as config: ${result.stderr.split('\n')[0] ?? ''}`);
  }
}

/**
 * The plain values of the stack outputs that hold secrets in the state the run left (none: none,
 * and no extra process). Read through the CLI, which alone has the stack's secrets provider.
 */
async function secretOutputsOf(
  spec: PulumiRunSpec,
  env: Record<string, string>,
  state: Deployment | undefined,
): Promise<Record<string, unknown> | undefined> {
  if (!state) return undefined;
  const names = secretOutputNames(state);
  if (names.length === 0) return undefined;
  const all = await stackOutputs(spec, env, { showSecrets: true });
  if (!all) {
    spec.onLine('stderr', "[runner] the stack's secret outputs could not be read; they cannot be shown");
    return undefined;
  }
  return Object.fromEntries(names.filter((name) => name in all).map((name) => [name, all[name]]));
}

/** The deployment the run left, parsed once for what the runner reads of it; undefined when none or unreadable. */
function parsedDeployment(deployment: string | undefined): Deployment | undefined {
  if (deployment === undefined) return undefined;
  try {
    return JSON.parse(deployment) as Deployment;
  } catch {
    return undefined;
  }
}

/** `pulumi stack output --json` (with `showSecrets`, in plain text: never to be printed); undefined when it fails. */
async function stackOutputs(
  spec: PulumiRunSpec,
  env: Record<string, string>,
  { showSecrets = false } = {},
): Promise<Record<string, unknown> | undefined> {
  const args = ['stack', 'output', '--json', ...(showSecrets ? ['--show-secrets'] : []), '--stack', spec.stackFqdn];
  const output = cli(spec, args);
  const result = await execa(output.file, output.args, { cwd: spec.workspaceDir, env, extendEnv: false, ...output.user, reject: false });
  if (result.exitCode !== 0) return undefined;
  return JSON.parse(result.stdout || '{}') as Record<string, unknown>;
}

/**
 * The CLI's working folder: a Pulumi.yaml naming the project, as the Automation API does for inline
 * programs. Stack config files Pulumi writes land here and go away with the job.
 */
async function prepareWorkspace(spec: PulumiRunSpec): Promise<void> {
  await mkdir(spec.workspaceDir, { recursive: true, mode: 0o700 });
  await writeFile(join(spec.workspaceDir, 'Pulumi.yaml'), `name: ${spec.project}\nruntime: nodejs\n`);
  if (spec.restoreDeployment !== undefined) {
    await writeFile(join(spec.workspaceDir, RESTORE_FILE), `{"version":3,"deployment":${spec.restoreDeployment}}`, { mode: 0o600 });
  }
  if (spec.scratchDeployment !== undefined) await writeScratchBackend(spec, spec.scratchDeployment);
  if (spec.updatePlan !== undefined) await writeFile(join(spec.workspaceDir, PLAN_FILE), spec.updatePlan, { mode: 0o600 });
  if (spec.identity) await ownFolder(spec.workspaceDir, spec.identity);
}

/**
 * A `file://` backend holding only this stack, at the given deployment: the layout the CLI keeps
 * (`.pulumi/meta.yaml`, `.pulumi/stacks/<project>/<stack>.json` with a version 3 checkpoint).
 */
async function writeScratchBackend(spec: PulumiRunSpec, deployment: string): Promise<void> {
  const root = join(spec.workspaceDir, SCRATCH_BACKEND_DIR, '.pulumi');
  const [, project = spec.project, stack = spec.stackFqdn] = spec.stackFqdn.split('/');
  await mkdir(join(root, 'stacks', project), { recursive: true, mode: 0o700 });
  await writeFile(join(root, 'meta.yaml'), 'version: 1\n');
  const checkpoint = `{"version":3,"checkpoint":{"stack":${JSON.stringify(spec.stackFqdn)},"latest":${deployment}}}`;
  await writeFile(join(root, 'stacks', project, `${stack}.json`), checkpoint, { mode: 0o600 });
}

/** Slot homes this process has handed to their uid (a home only ever belongs to its slot's uid). */
const ownedHomes = new Set<string>();

/** The slot's home (and Pulumi home in it): the job's uid's own, 0700; handed over once per process. */
async function prepareHome(spec: PulumiRunSpec): Promise<void> {
  const home = dirname(spec.pulumiHome);
  const key = `${home} ${spec.identity?.uid}`;
  if (ownedHomes.has(key)) return;
  await makeSlotHome(home, spec.identity);
  ownedHomes.add(key);
}

async function prepareBackend(url: string): Promise<void> {
  if (url.startsWith('file://')) await mkdir(fileURLToPath(url), { recursive: true });
}

/**
 * Runs one Pulumi operation with the real CLI: the program host serves the program and collects
 * engine events; the CLI's stdout/stderr lines go to `onLine` as they come.
 */
export async function runPulumi(given: PulumiRunSpec): Promise<PulumiRunResult> {
  const scratch = given.scratchDeployment !== undefined;
  const spec = scratch ? { ...given, backendUrl: pathToFileURL(join(given.workspaceDir, SCRATCH_BACKEND_DIR)).href } : given;
  const env = pulumiEnv(spec);
  // A scratch backend is written with the workspace.
  await Promise.all([scratch ? undefined : prepareBackend(spec.backendUrl), prepareHome(spec), prepareWorkspace(spec)]);
  spec.onStep?.('workspace ready');
  const heard: HeardEvents = { summary: {}, errors: [] };
  const onEngineEvent = (event: EngineEvent) => {
    heard.outputs = stackOutputsOf(event) ?? heard.outputs;
    if (event.summaryEvent) heard.summary = event.summaryEvent.resourceChanges ?? {};
    const error = errorMessageOf(event);
    if (error) heard.errors.push(error);
    spec.onEvent(event);
  };
  // Only up and preview run the program; refresh and destroy need just somewhere to send events:
  // the runner's own server, except from a sandbox, whose loopback is its own: there the slot's
  // (warm) program host, which serves events too, is the receiver.
  const host =
    runsProgram(spec.operation, spec.options) || spec.sandbox
      ? await startProgramHost(spec, onEngineEvent)
      : await startEventsServer(onEngineEvent);
  spec.onStep?.('program host ready');
  try {
    if (spec.clearStaleLock) {
      spec.onLine('stderr', '[runner] the previous run on this stack was lost; clearing the Pulumi lock it may have left');
      // On the stack's own backend, also when this run works on a scratch one (a restore's preview).
      await pulumiCancel(spec, pulumiEnv(given));
    }
    if (runsProgram(spec.operation, spec.options)) {
      await ensureStack(spec, env);
      await setSecretConfig(spec, env);
      spec.onStep?.('stack selected, secret config set');
    }
    const { exitCode, forced } = await runOperation(spec, env, host);
    spec.onStep?.('operation ended');
    // A failure may mean the stack was removed behind our back, a stack-remove removes it: check again next time.
    if (exitCode !== 0 || spec.operation === 'stack-remove') knownStacks.delete(`${spec.backendUrl} ${spec.stackFqdn}`);
    const lockLeft = forced && spec.mayClearLock?.() === false;
    // Killed after the grace period: Pulumi could not remove its lock. We still hold the stack's
    // lock, so no live run can own it: clear it, so the next operation on the stack can run.
    if (forced && !lockLeft && !scratch) await pulumiCancel(spec, env);
    const left = await readWhatRunLeft(spec, env, exitCode, heard.outputs);
    spec.onStep?.('state and outputs read');
    return {
      ...left,
      exitCode,
      aborted: spec.signal.aborted,
      outputs: spec.operation === 'destroy' ? {} : (left.outputs ?? {}),
      summary: heard.summary,
      errors: heard.errors,
      lockLeft,
    };
  } finally {
    await host.stop();
    if (scratch) knownStacks.delete(`${spec.backendUrl} ${spec.stackFqdn}`); // a backend of this run only
    await removeWorkspace(spec);
    spec.onStep?.('program host stopped, workspace removed');
  }
}

/** What the engine events of a run said: the stack's outputs (if an event carried them), its change summary, its errors. */
interface HeardEvents {
  outputs?: Record<string, unknown>;
  summary: Record<string, number>;
  errors: string[];
}

/** `pulumi cancel`: clears the stack's Pulumi lock (only ever when no live run of ours can own it). */
async function pulumiCancel(spec: PulumiRunSpec, env: Record<string, string>): Promise<void> {
  const cancel = cli(spec, ['cancel', '--yes', '--stack', spec.stackFqdn]);
  await execa(cancel.file, cancel.args, {
    cwd: spec.workspaceDir,
    env,
    extendEnv: false,
    ...cancel.user,
    reject: false,
  });
}

/**
 * The operation's own Pulumi process, its lines forwarded as they come. The job's signal sends it
 * SIGINT (Pulumi's graceful cancel); still running `graceMs` later, its process tree is killed (`forced`).
 */
async function runOperation(
  spec: PulumiRunSpec,
  env: Record<string, string>,
  host: JobEndpoints,
): Promise<{ exitCode: number | null; forced: boolean }> {
  // Update plans are a public preview: only the commands that save or apply one get PULUMI_EXPERIMENTAL.
  const usesPlan = spec.updatePlan !== undefined || (spec.operation === 'preview' && spec.options.savePlan === true);
  const args = operationArgs(spec.operation, spec.stackFqdn, spec.options, host, spec.updatePlan !== undefined);
  const operation = cli(spec, args);
  const subprocess = execa(operation.file, operation.args, {
    cwd: spec.workspaceDir,
    env: usesPlan ? { ...env, PULUMI_EXPERIMENTAL: 'true' } : env,
    extendEnv: false,
    ...operation.user,
    buffer: false,
    reject: false,
    // In a sandbox the CLI is not the process started (bubblewrap passes no signal on): it is told itself.
    ...(spec.sandbox ? {} : { cancelSignal: spec.signal, killSignal: 'SIGINT' as const }),
    forceKillAfterDelay: false,
  });
  spec.onSpawn?.();
  spec.onStep?.('operation spawned');
  let forced = false;
  let graceTimer: NodeJS.Timeout | undefined;
  const onAbort = () => {
    if (spec.sandbox && subprocess.pid !== undefined) void interruptSandboxed(subprocess.pid);
    // A job past its disk or process limit is stopped at once: a grace period would let it write on, or hang.
    const grace = spec.signal.reason === 'disk_limit' || spec.signal.reason === 'process_limit' ? 0 : spec.graceMs;
    graceTimer = setTimeout(() => {
      forced = true;
      if (subprocess.pid !== undefined) killTree(subprocess.pid);
    }, grace);
  };
  if (spec.signal.aborted) onAbort();
  else spec.signal.addEventListener('abort', onAbort, { once: true });
  const [result] = await Promise.all([
    subprocess,
    forwardLines(subprocess.stdout, (text) => spec.onLine('stdout', text)),
    forwardLines(subprocess.stderr, (text) => spec.onLine('stderr', text)),
  ]);
  clearTimeout(graceTimer);
  spec.signal.removeEventListener('abort', onAbort);
  return { exitCode: result.exitCode ?? null, forced };
}

/** SIGINT (Pulumi's graceful cancel) to the CLI a sandbox runs. */
async function interruptSandboxed(outerPid: number): Promise<void> {
  const pid = await sandboxedPid(outerPid);
  try {
    if (pid !== undefined) process.kill(pid, 'SIGINT');
  } catch {
    // ended meanwhile
  }
}

/**
 * What the run left: the stack's state (an operation that writes state may have changed it, whatever
 * its outcome), its outputs when no event carried them, the update plan a preview saved, and the
 * plain values of secret outputs (only for a state that holds a secret).
 */
async function readWhatRunLeft(
  spec: PulumiRunSpec,
  env: Record<string, string>,
  exitCode: number | null,
  heardOutputs: Record<string, unknown> | undefined,
): Promise<Pick<PulumiRunResult, 'deployment' | 'savedPlan' | 'secretOutputs'> & { outputs?: Record<string, unknown> }> {
  const deployment = writesState(spec.operation)
    ? await exportDeployment({
        ...spec,
        env,
        command: (args) => cli(spec, args),
        read: (path) => jobProcess(spec, '/bin/cat', [path]),
      }).catch((err: Error) => {
        spec.onLine('stderr', `[runner] the stack state could not be read after the run: ${err.message}`);
        return undefined;
      })
    : undefined;
  const outputsMissing = heardOutputs === undefined && (spec.operation === 'up' || spec.operation === 'refresh') && exitCode === 0;
  const readsSecrets = spec.readSecretOutputs && deployment !== undefined && holdsPulumiSecret(deployment);
  // Parsed once, and only when read (a state can be tens of MB).
  const state = outputsMissing || readsSecrets ? parsedDeployment(deployment) : undefined;
  // No outputs among the events (a refresh has none): those of the state it left, else the CLI's.
  const outputs = outputsMissing ? (state ? stackOutputsInState(state) : ((await stackOutputs(spec, env)) ?? {})) : heardOutputs;
  const savedPlan =
    spec.operation === 'preview' && spec.options.savePlan && exitCode === 0
      ? await readJobFile(join(spec.workspaceDir, PLAN_FILE), STATE_MAX_JSON_BYTES).catch((err: Error) => {
          spec.onLine('stderr', `[runner] the update plan could not be read: ${err.message}`);
          return undefined;
        })
      : undefined;
  const secretOutputs = readsSecrets
    ? await secretOutputsOf(spec, env, state).catch((err: Error) => {
        // The state version is kept without them: GET …/outputs?showSecrets=true then says they were not kept.
        spec.onLine('stderr', `[runner] the secret outputs could not be read: ${err.message}`);
        return undefined;
      })
    : undefined;
  return { deployment, savedPlan, secretOutputs, outputs };
}

/**
 * Removes the job's folder once nothing of its uid runs (a process left behind could swap a folder
 * for a link under the recursive delete; the room's release kills them anyway). Not killed: the
 * folder stays (the slot is kept out of use, a starting runner sweeps job folders); the run's result stands.
 */
async function removeWorkspace(spec: PulumiRunSpec): Promise<void> {
  if (spec.identity) {
    // Sandboxed, the slot's cgroup holds every process of the job (none forks its way out): killed
    // whole, without a scan of /proc.
    const stopping = spec.sandbox ? spec.sandbox.slot.kill() : killProcessesOf(spec.identity);
    const killed = await stopping.then(
      () => true,
      (err: Error) => {
        spec.onLine('stderr', `[runner] the job's processes could not all be stopped (${err.message}); its folder is left for clean-up`);
        return false;
      },
    );
    if (!killed) return;
  }
  await rm(spec.workspaceDir, { recursive: true, force: true });
}
