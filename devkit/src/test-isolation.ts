import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, uidReachProblemSync } from '@pds/shared';
import { toolPath } from './local-deps.js';

/**
 * tap follows every child process (it wraps spawn) and makes each write a record into
 * .tap/processinfo when it exits; a job's processes run as their slot's uid and could not (and
 * would print the failure into the job's output). Test plumbing only: the folder is opened to them.
 */
function openTapProcessInfo(): void {
  const dir = join(repoRoot, '.tap', 'processinfo');
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o1777);
}

/** Why the job sandbox cannot be had here (not root, or bubblewrap or slirp4netns missing), or undefined. */
function sandboxToolsMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'the tests do not run as root';
  const missing = ['bwrap', 'slirp4netns', 'nft'].filter(
    (tool) => spawnSync('sh', ['-c', `command -v ${tool} || [ -x /usr/sbin/${tool} ]`]).status !== 0,
  );
  return missing.length > 0 ? `${missing.join(', ')} not installed (npm run tools installs them)` : undefined;
}

/** The first slot uid the tests' runners use (RUNNER_UID_BASE's default). */
const SLOT_UID = 61_000;

export type TestIsolation = { isolation: 'sandbox' | 'uid' | 'none'; why?: string; sandboxWhy?: string };

let decided: TestIsolation | undefined;

/**
 * RUNNER_ISOLATION for the tests and benches: `sandbox` (as in production) where the tests run as
 * root with bubblewrap and slirp4netns, else `uid` (jobs run as their slot's uid) wherever a slot uid can reach this checkout's program host, modules and Pulumi CLI:
 * the case on this kind of machine. A checkout in a folder other users cannot pass through (a 0700
 * temporary folder) cannot isolate: there the tests run with `none`, say so loudly once, and the
 * isolation proof is skipped with that reason rather than failing every test for a folder's mode.
 */
export function testIsolation(): TestIsolation {
  if (decided) return decided;
  openTapProcessInfo();
  // PDS_TEST_ISOLATION=none runs the suite as a machine without root would (and proves that mode works);
  // PDS_TEST_ISOLATION=uid as one without namespaces or cgroups.
  if (process.env.PDS_TEST_ISOLATION === 'none') return (decided = { isolation: 'none', why: 'PDS_TEST_ISOLATION=none' });
  const paths = [join(repoRoot, 'services/runner/dist/src/pulumi/program-host.js'), join(repoRoot, 'modules'), toolPath('pulumi')];
  const problem = uidReachProblemSync(SLOT_UID, { read: paths, execute: [] });
  if (!problem) {
    const sandboxWhy = process.env.PDS_TEST_ISOLATION === 'uid' ? 'PDS_TEST_ISOLATION=uid' : sandboxToolsMissing();
    decided = sandboxWhy ? { isolation: 'uid', sandboxWhy } : { isolation: 'sandbox' };
    if (sandboxWhy) console.error(`\n*** TESTS RUN WITHOUT THE JOB SANDBOX (RUNNER_ISOLATION=uid): ${sandboxWhy} ***\n`);
  } else {
    // A checkout in a folder closed to other users (a 0700 temporary folder) is the common cause.
    decided = { isolation: 'none', why: problem };
    console.error(`\n*** TESTS RUN WITHOUT JOB ISOLATION (RUNNER_ISOLATION=none): ${problem} ***\n`);
  }
  return decided;
}

/**
 * RUNNER_ISOLATION for tests and benches that run the stand-in CLI (e2e/fixtures): it logs every run
 * into one file that all jobs append to, test plumbing that no sandbox lets through (a job sees no
 * folder but its own). They test the fleet, outages and throughput, not the sandbox: their jobs run
 * as uids of their own (`uid`) where the others are sandboxed.
 */
export function standInIsolation(): TestIsolation['isolation'] {
  const { isolation } = testIsolation();
  return isolation === 'sandbox' ? 'uid' : isolation;
}
