package redisstore

import "github.com/redis/go-redis/v9"

// Times in the scripts are microseconds of Redis's own clock (TIME), so
// every gateway measures against the same clock; numbers stay well within
// the 2^53 a Lua number holds exactly. Redis writes Lua numbers given to
// redis.call as integers, so TATs are stored exactly.

// strictScript is GCRA on one key. KEYS[1] is the key (a string holding
// its TAT); ARGV are the emission interval and the capacity. It returns the
// key's backlog counting this request in (TAT after it minus now): the
// request was admitted, and the TAT stored, when that is within the
// capacity. The key expires when its allowance is whole again.
var strictScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local backlog = tat - now + interval
if backlog <= capacity then
  redis.call('SET', KEYS[1], now + backlog, 'PX', math.ceil(backlog / 1000))
end
return backlog
`)

// syncScript pushes admissions gateways made on their own. KEYS are the
// keys (hashes of tat and pushed, the count of admissions ever pushed);
// ARGV are the emission interval, the capacity, then the admissions to add
// to each key. Admissions move the TAT unconditionally, past the capacity
// if gateways together admitted too many, so that the excess is paid back
// before anything more is admitted. It returns, per key, the backlog (TAT
// minus now) and the pushed count, which tells a gateway whether others
// pushed since its last sync. Keys expire a window after their TAT.
var syncScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local out = {}
for i = 1, #KEYS do
  local n = tonumber(ARGV[i + 2])
  local state = redis.call('HMGET', KEYS[i], 'tat', 'pushed')
  local tat = tonumber(state[1]) or now
  local pushed = (tonumber(state[2]) or 0) + n
  if tat < now then tat = now end
  tat = tat + n * interval
  redis.call('HSET', KEYS[i], 'tat', tat, 'pushed', pushed)
  redis.call('PEXPIRE', KEYS[i], math.ceil((tat - now + capacity) / 1000))
  out[2 * i - 1] = tat - now
  out[2 * i] = pushed
end
return out
`)

// heartbeatScript records a gateway as alive in a sorted set scored by
// time, drops the members not heard from within ARGV[2] microseconds and
// returns how many are left. KEYS[1] is the set, ARGV[1] the gateway.
var heartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local live = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - live)
redis.call('PEXPIRE', KEYS[1], math.ceil(live / 1000))
return redis.call('ZCARD', KEYS[1])
`)
