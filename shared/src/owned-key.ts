/**
 * Lua for a Redis key held by one owner (its value a token only the owner knows): renewed and
 * released only by that owner, so a holder whose key expired cannot drop or extend another's.
 * KEYS[1]: the key. ARGV[1]: the token; RENEW's ARGV[2]: the new lifetime in ms.
 */
export const RENEW_OWNED_KEY = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
export const RELEASE_OWNED_KEY = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
