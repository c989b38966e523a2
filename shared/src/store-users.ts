import { CHANNEL_PATTERNS, KEY_PATTERNS, JOBS_BACKLOG_LIST } from './names.js';

/** The services that connect to the stores, each as its own user (docs/security.md, "The stores"). */
export const STORE_USERS = ['api', 'runner', 'stream-gateway'] as const;
export type StoreUser = (typeof STORE_USERS)[number];

const keys = (patterns: readonly string[]) => patterns.map((pattern) => `~${pattern}`).join(' ');
const channels = (patterns: readonly string[]) => patterns.map((pattern) => `&${pattern}`).join(' ');

/**
 * Every command but the server's administration (CONFIG, FLUSHALL, KEYS, MONITOR, ACL, DEBUG,
 * SHUTDOWN, CLIENT KILL…: `@dangerous`, `@admin`), Redis functions, RANDOMKEY and PUBSUB (which name
 * other keys and channels) and flushing or killing scripts; INFO back, which ioredis and BullMQ read
 * on connect. BullMQ's Lua scripts are checked against the same rules, call by call. SCAN stays
 * (key names, not values): BullMQ's scripts may page with it.
 */
const QUEUE_COMMANDS = '+@all -@dangerous -@admin -function -randomkey -pubsub -script|flush -script|kill +info';

/**
 * What each service may do in Redis, as ACL rules (after `reset`: no key, channel nor command): the keys and
 * channels it uses, and no more. The gateway, the one facing browsers, only redeems stream tickets
 * and subscribes to job channels.
 */
export const REDIS_ACL_RULES: Record<StoreUser, string> = {
  api: [
    keys([...KEY_PATTERNS.queues, ...KEY_PATTERNS.jobs, ...KEY_PATTERNS.idempotency, ...KEY_PATTERNS.streamTickets]),
    channels([CHANNEL_PATTERNS.jobLines, ...CHANNEL_PATTERNS.control]),
    QUEUE_COMMANDS,
  ].join(' '),
  runner: [
    keys([...KEY_PATTERNS.queues, ...KEY_PATTERNS.jobs, ...KEY_PATTERNS.uidLeases, ...KEY_PATTERNS.historySweep]),
    channels([CHANNEL_PATTERNS.jobLines, ...CHANNEL_PATTERNS.control]),
    QUEUE_COMMANDS,
  ].join(' '),
  'stream-gateway': [
    keys(KEY_PATTERNS.streamTickets),
    channels([CHANNEL_PATTERNS.jobLines]),
    '-@all +ping +info +client|setname +quit +getdel +subscribe +unsubscribe',
  ].join(' '),
};

/**
 * The `user` directive that makes `user` in redis-server (a config line, or `--user` on its command
 * line). The password must hold no space (ours are hex or base64url).
 */
export function redisUserDirective(user: StoreUser, password: string): string {
  if (/\s/.test(password) || password === '') throw new Error(`the Redis password of ${user} must be non-empty with no space`);
  return `${user} reset on >${password} ${REDIS_ACL_RULES[user]}`;
}

/**
 * The queue scaler's Redis user (KEDA in Kubernetes): the length of the waiting list, nothing else
 * (connection commands: AUTH, HELLO, PING, CLIENT SETINFO/SETNAME).
 */
export const REDIS_SCALER_RULES = `~${JOBS_BACKLOG_LIST} -@all +@connection -@dangerous +llen`;

/** The `user` directive that turns off Redis's `default` user (no client gets in without a name). */
export const REDIS_DEFAULT_USER_OFF = 'default reset off';

/**
 * What each service may do in MongoDB (a role on the service's database): the gateway only reads
 * (jobs, lines, tokens); the API and runners write and make indexes.
 */
export const MONGO_ROLES: Record<StoreUser, 'read' | 'readWrite'> = {
  api: 'readWrite',
  runner: 'readWrite',
  'stream-gateway': 'read',
};
