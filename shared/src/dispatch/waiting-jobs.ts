import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  DISPATCH_CHANNEL,
  DISPATCHING_KEY,
  JOB_ORDER_KEY,
  type JobClass,
  JOBS_BACKLOG_LIST,
  RUNNER_SLOTS_KEY,
  RUNNERS_KEY,
  STACK_JOBS_QUEUE,
  jobClaimKey,
  jobDispatchedKey,
  stackLockKey,
  stackWaitingKey,
  tenantRunningKey,
  tenantWaitingKey,
  WAITING_ENTRIES_KEY,
  waitingTenantsKey,
} from '../names.js';

/** What the dispatcher puts on the runner queue for a job: BullMQ's data and options, and where the job waits. */
export interface WaitingEntry {
  jobId: string;
  tenant: string;
  jobClass: JobClass;
  stackKey: string;
  data: Record<string, unknown>;
  opts: Record<string, unknown>;
}

/** A key of names.ts split around where its variable part goes, for the scripts that build keys. */
function keyShape(keyOf: (part: string) => string): [string, string] {
  const marker = '\u0000';
  const [before = '', after = ''] = keyOf(marker).split(marker);
  return [before, after];
}

const SHAPES = [
  // The class's place is marked \u0001 (the script puts the class there).
  ...keyShape((tenant) => tenantWaitingKey('\u0001' as JobClass, tenant)),
  ...keyShape((stack) => stackLockKey(stack)),
  ...keyShape((stack) => stackWaitingKey(stack)),
  ...keyShape((job) => jobClaimKey(job)),
  ...keyShape((job) => jobDispatchedKey(job)),
];

// Helpers every script below starts with: the keys of names.ts, built from the shapes passed first.
// The backlog list is a count (KEDA reads its length): one token per job in a tenant's line.
const KEY_HELPERS = `
local S = ARGV
local function waitingKey(class, tenant) return string.gsub(S[1], '\\001', class, 1) .. tenant .. S[2] end
local function lockKey(stack) return S[3] .. stack .. S[4] end
local function lineKey(stack) return S[5] .. stack .. S[6] end
local function claimKey(job) return S[7] .. job .. S[8] end
local function dispatchedKey(job) return S[9] .. job .. S[10] end
local function leaveLine(id, entry)
  if redis.call('zrem', waitingKey(entry.jobClass, entry.tenant), id) == 1 then redis.call('lpop', KEYS[3]) end
  if redis.call('exists', waitingKey(entry.jobClass, entry.tenant)) == 0 then
    redis.call('srem', KEYS[4] .. entry.jobClass, entry.tenant)
  end
end
`;
const ARGS = SHAPES.length;

// How a job is taken (TAKE and ADD's fast lane). Expects locals: class, tenant, now, holdUntil, max,
// ttl, and the keys DISPATCHING (taken, not yet on the runner queue) and RUNNING (the tenant's places).
const TAKE_HELPERS = `
local own = waitingKey(class, tenant)
local function settleEmpty()
  if redis.call('exists', own) == 0 then redis.call('srem', KEYS[4] .. class, tenant) return true end
  return false
end
local function atLimit()
  if max < 0 then return false end
  redis.call('zremrangebyscore', RUNNING, '-inf', now)
  return redis.call('zcard', RUNNING) >= max
end
local function take(id, entry, raw)
  leaveLine(id, entry)
  redis.call('zadd', DISPATCHING, now, id)
  redis.call('set', dispatchedKey(id), '1', 'PX', ttl)
  if max >= 0 then redis.call('zadd', RUNNING, holdUntil, id) end
  settleEmpty()
  return {'job', id, raw}
end
local function cancelled(id) return redis.call('get', claimKey(id)) == 'cancelled' end
`;

/**
 * KEYS: entries, order, backlog, tenants-set prefix, tenant's running set, dispatching, runners,
 * runners' slots, the runner queue's active, wait and prioritized keys.
 * ARGV: shapes, id, entry JSON, class, tenant, stack, fast (1: may start now), now, holdUntil, max, ttl.
 * Returns 0 (waiting already), 1 (waits; the dispatcher is woken), or {'job', id, entry}: the fast
 * lane, taken at once, for a job that nobody else waits beside, first in its free stack's line,
 * within its tenant's limit, while the pool has a slot free. Nobody is passed over, so fairness has
 * nothing to decide; the dispatcher's hop (a wake, a round) is saved on an idle fleet.
 */
const ADD = `${KEY_HELPERS}
local id, entry, class, tenant, stack = ARGV[${ARGS + 1}], ARGV[${ARGS + 2}], ARGV[${ARGS + 3}], ARGV[${ARGS + 4}], ARGV[${ARGS + 5}]
local fast, now, holdUntil, max, ttl = ARGV[${ARGS + 6}] == '1', ARGV[${ARGS + 7}], ARGV[${ARGS + 8}], tonumber(ARGV[${ARGS + 9}]), ARGV[${ARGS + 10}]
local RUNNING, DISPATCHING = KEYS[5], KEYS[6]
${TAKE_HELPERS}
if redis.call('hsetnx', KEYS[1], id, entry) == 0 then return 0 end
redis.call('zadd', own, redis.call('incr', KEYS[2]), id)
redis.call('sadd', KEYS[4] .. class, tenant)
redis.call('rpush', KEYS[3], '1')
local function freeSlots()
  local total = 0
  for _, runner in ipairs(redis.call('zrangebyscore', KEYS[7], now, '+inf')) do total = total + tonumber(redis.call('hget', KEYS[8], runner) or '0') end
  return total - redis.call('llen', KEYS[9]) - redis.call('llen', KEYS[10]) - redis.call('zcard', KEYS[11]) - redis.call('zcard', DISPATCHING)
end
if fast and redis.call('llen', KEYS[3]) == 1 and redis.call('exists', lockKey(stack)) == 0
  and redis.call('zrange', lineKey(stack), 0, 0)[1] == id and not atLimit() and freeSlots() > 0 then
  return take(id, cjson.decode(entry), entry)
end
redis.call('publish', '${DISPATCH_CHANNEL}', '')
return 1`;

/** KEYS: entries, -, backlog, tenants-set prefix. ARGV: shapes, id. Takes a job out before it was dispatched. */
const FORGET = `${KEY_HELPERS}
local id = ARGV[${ARGS + 1}]
local raw = redis.call('hget', KEYS[1], id)
if not raw then return 0 end
leaveLine(id, cjson.decode(raw))
redis.call('hdel', KEYS[1], id)
return 1`;

/**
 * Gives back a job taken by ADD's fast lane that could not be put on the runner queue: its entry,
 * its place among those dispatching, its tenant place and its dispatched mark go. KEYS: entries,
 * dispatching, the tenant's running set, its dispatched mark. ARGV: id. Returns 0 when its entry was
 * gone already: a dispatcher put it on the runner queue meanwhile (it is not the caller's to undo).
 */
const UNTAKE = `
if redis.call('hdel', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('zrem', KEYS[2], ARGV[1])
redis.call('zrem', KEYS[3], ARGV[1])
redis.call('del', KEYS[4])
return 1`;

/**
 * Takes the tenant's next job that may start now: its stack free, and first in its stack's line
 * (or blocked only by a job that is waiting here too: that one goes instead, being first), within
 * the tenant's running limit (a place is taken for it, as the runner's tenant gate would). Looks at
 * the tenant's first `scan` jobs, one per stack (the rest of a busy stack's line is passed over).
 * Jobs cancelled meanwhile are dropped on the way, from the tenant's line and their stack's.
 * KEYS: entries, dispatching, backlog, tenants-set prefix, tenant's running set.
 * ARGV: shapes, class, tenant, scan, now, holdUntil, max (-1: none), dispatchedTtlMs.
 * Returns {'job', id, entry} | {'limit'} | {'busy'} | {'empty'}.
 */
const TAKE = `${KEY_HELPERS}
local class, tenant = ARGV[${ARGS + 1}], ARGV[${ARGS + 2}]
local scan, now, holdUntil, max, ttl = tonumber(ARGV[${ARGS + 3}]), ARGV[${ARGS + 4}], ARGV[${ARGS + 5}], tonumber(ARGV[${ARGS + 6}]), ARGV[${ARGS + 7}]
local DISPATCHING, RUNNING = KEYS[2], KEYS[5]
${TAKE_HELPERS}
if atLimit() then
  if settleEmpty() then return {'empty'} end
  return {'limit'}
end
local seen = {}
local ids = redis.call('zrange', own, 0, scan - 1)
for _, id in ipairs(ids) do
  local raw = redis.call('hget', KEYS[1], id)
  if not raw then
    if redis.call('zrem', own, id) == 1 then redis.call('lpop', KEYS[3]) end
  else
    local entry = cjson.decode(raw)
    if cancelled(id) then
      leaveLine(id, entry)
      redis.call('hdel', KEYS[1], id)
      redis.call('zrem', lineKey(entry.stackKey), id)
    elseif not seen[entry.stackKey] then
      seen[entry.stackKey] = true
      if redis.call('exists', lockKey(entry.stackKey)) == 0 then
        local head = redis.call('zrange', lineKey(entry.stackKey), 0, 0)[1]
        -- A head that was cancelled is out of the line: the next one is first.
        while head and head ~= id and cancelled(head) do
          redis.call('zrem', lineKey(entry.stackKey), head)
          redis.call('del', dispatchedKey(head))
          head = redis.call('zrange', lineKey(entry.stackKey), 0, 0)[1]
        end
        if not head or head == id then return take(id, entry, raw) end
        if redis.call('exists', dispatchedKey(head)) == 0 then
          local headRaw = redis.call('hget', KEYS[1], head)
          -- First in line and not handed out: a job of the other class goes first; a job that is
          -- neither (its entry lost) is the runners' to mend: this one goes, and the runner sorts the line.
          if not headRaw then return take(id, entry, raw) end
          return take(head, cjson.decode(headRaw), headRaw)
        end
      end
    end
  end
end
if settleEmpty() then return {'empty'} end
return {'busy'}`;

/** How many of a tenant's first waiting jobs a take looks at for one whose stack is free (one per stack). */
export const TAKE_SCAN = 512;

/** What a job may start at once with, when it passes nobody (WaitingJobs.add). */
export interface FastLane {
  /** The runner queue, whose keys tell the slots it holds. */
  queue: Pick<Queue, 'keys'>;
  /** The tenant's `maxConcurrentJobs`, if it has one. */
  max: number | undefined;
  /** How long the tenant place taken for it holds before its runner renews it (the runner's four beats). */
  holdMs: number;
}

export type TakeResult = { job: WaitingEntry } | { blocked: 'limit' | 'busy' } | { empty: true };

export interface TakeOptions {
  /** How many of the tenant's first jobs are looked at for one whose stack is free, one per stack (default 512). */
  scan?: number;
  /** The tenant's `maxConcurrentJobs`, if it has one. */
  max: number | undefined;
  /** How long the place taken for the job holds before its runner renews it (the runner's four beats). */
  holdMs: number;
}

/**
 * How long a dispatched job keeps the next in its stack's line waiting, should it stay first in line
 * without starting: longer than the longest approval wait (30 days), which a gated job spends first in line.
 * The mark goes when the job takes the stack or leaves the line.
 */
const DISPATCHED_TTL_MS = 31 * 24 * 3600 * 1000;

/**
 * The jobs waiting for the runner pool, per tenant and class, in Redis, shared by every API and
 * runner process: queueStackJob adds them, the dispatcher takes them in its fair order and puts
 * them on the runner queue. Every step is one script, so a job is taken at most once.
 */
export class WaitingJobs {
  constructor(private readonly redis: Pick<Redis, 'eval' | 'hget' | 'hmget' | 'smembers' | 'zrangebyscore' | 'zrem' | 'multi' | 'llen'>) {}

  private keys(tenantRunning = '') {
    return [WAITING_ENTRIES_KEY, JOB_ORDER_KEY, JOBS_BACKLOG_LIST, waitingTenantsKey('' as JobClass), tenantRunning];
  }

  /**
   * Puts a job in its tenant's line and wakes the dispatcher: 'waiting', or 'present' if it was
   * there already. With a `lane`, a job that may start at once and passes nobody is taken instead
   * ('taken': the caller puts it on the runner queue, as the dispatcher would; see ADD).
   */
  async add(entry: WaitingEntry, lane?: FastLane, now = Date.now()): Promise<{ taken: WaitingEntry } | 'waiting' | 'present'> {
    const runnerQueue = lane?.queue.keys;
    const keys = [
      ...this.keys(tenantRunningKey(entry.tenant)),
      DISPATCHING_KEY,
      RUNNERS_KEY,
      RUNNER_SLOTS_KEY,
      runnerQueue?.active ?? '',
      runnerQueue?.wait ?? '',
      runnerQueue?.prioritized ?? '',
    ];
    const args = [
      entry.jobId,
      JSON.stringify(entry),
      entry.jobClass,
      entry.tenant,
      entry.stackKey,
      lane ? '1' : '0',
      String(now),
      String(now + (lane?.holdMs ?? 0)),
      String(lane?.max ?? -1),
      String(DISPATCHED_TTL_MS),
    ];
    const reply = (await this.redis.eval(ADD, keys.length, ...keys, ...SHAPES, ...args)) as number | string[];
    if (Array.isArray(reply)) return { taken: JSON.parse(reply[2] as string) as WaitingEntry };
    return reply === 1 ? 'waiting' : 'present';
  }

  /** Gives back a job the fast lane took (see UNTAKE); false if a dispatcher has handed it over meanwhile. */
  async untake(entry: Pick<WaitingEntry, 'jobId' | 'tenant'>): Promise<boolean> {
    const keys = [WAITING_ENTRIES_KEY, DISPATCHING_KEY, tenantRunningKey(entry.tenant), jobDispatchedKey(entry.jobId)];
    return (await this.redis.eval(UNTAKE, keys.length, ...keys, entry.jobId)) === 1;
  }

  /** Takes a job out before it was dispatched (cancelled, or never queued after all); true if it was waiting. */
  async forget(jobId: string): Promise<boolean> {
    const keys = this.keys().slice(0, 4);
    return (await this.redis.eval(FORGET, keys.length, ...keys, ...SHAPES, jobId)) === 1;
  }

  /** The tenants with jobs of `jobClass` waiting. */
  tenants(jobClass: JobClass): Promise<string[]> {
    return this.redis.smembers(waitingTenantsKey(jobClass));
  }

  /** The tenant's next job that may start now, or why there is none. */
  async take(jobClass: JobClass, tenant: string, options: TakeOptions, now = Date.now()): Promise<TakeResult> {
    const keys = this.keys(tenantRunningKey(tenant));
    keys[1] = DISPATCHING_KEY;
    const args = [jobClass, tenant, options.scan ?? TAKE_SCAN, now, now + options.holdMs, options.max ?? -1, DISPATCHED_TTL_MS].map(String);
    const reply = (await this.redis.eval(TAKE, keys.length, ...keys, ...SHAPES, ...args)) as string[];
    if (reply[0] === 'job') return { job: JSON.parse(reply[2] as string) as WaitingEntry };
    if (reply[0] === 'empty') return { empty: true };
    return { blocked: reply[0] as 'limit' | 'busy' };
  }

  /** The job is on the runner queue: its entry goes (both at once: an entry left behind would say the job still waits). */
  async settle(jobId: string): Promise<void> {
    await this.redis.multi().hdel(WAITING_ENTRIES_KEY, jobId).zrem(DISPATCHING_KEY, jobId).exec();
  }

  /** Jobs taken before `before` and not yet settled (their dispatcher died on the way), with their entries. */
  async unsettled(before: number): Promise<WaitingEntry[]> {
    const ids = await this.redis.zrangebyscore(DISPATCHING_KEY, '-inf', before);
    if (ids.length === 0) return [];
    // One read for all (a round reads this first, on every job's path).
    const raws = await this.redis.hmget(WAITING_ENTRIES_KEY, ...ids);
    const gone = ids.filter((_, i) => !raws[i]);
    if (gone.length > 0) await this.redis.zrem(DISPATCHING_KEY, ...gone);
    return raws.filter((raw): raw is string => Boolean(raw)).map((raw) => JSON.parse(raw) as WaitingEntry);
  }

  /** What the job waits with, while it waits for the dispatcher (not yet on the runner queue). */
  async entry(jobId: string): Promise<WaitingEntry | undefined> {
    const raw = await this.redis.hget(WAITING_ENTRIES_KEY, jobId);
    return raw ? (JSON.parse(raw) as WaitingEntry) : undefined;
  }

  /** Jobs waiting for the dispatcher, across tenants. */
  backlog(): Promise<number> {
    return this.redis.llen(JOBS_BACKLOG_LIST);
  }
}

/**
 * Puts a taken job on the runner queue (its id the BullMQ job id: a second add of it is nothing),
 * then settles its entry off the job's path: one left unsettled (the process died, Redis blinked)
 * is put on the queue again by the dispatcher after 5 s, as nothing.
 */
export async function handOver(
  queue: Pick<Queue, 'add'>,
  waiting: Pick<WaitingJobs, 'settle'>,
  entry: Pick<WaitingEntry, 'jobId' | 'data' | 'opts'>,
  onUnsettled: (err: Error) => void,
): Promise<void> {
  await queue.add(STACK_JOBS_QUEUE, entry.data, { ...entry.opts, jobId: entry.jobId });
  void waiting.settle(entry.jobId).catch(onUnsettled);
}
