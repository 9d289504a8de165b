package ledger

import "github.com/redis/go-redis/v9"

// The Redis backend runs every multi-key operation as one Lua script, which
// Redis executes atomically: no other command interleaves, so any number of
// proxies can share one ledger. Go works out every key (window arithmetic
// and time zones stay in Go) and passes it in KEYS.
//
// Lua numbers are IEEE doubles: exact for integers up to 2^53, which is why
// amounts are capped at MaxAmount. Stored values stay integer strings
// changed by HINCRBY/INCRBY, and numbers go back to Redis through
// string.format('%d'), never tostring, which switches to exponents.
//
// Per account (see Redis.key):
//
//	holds    sorted set; member "<amount>|<index>|<reservation id>", score expiry ms
//	grants   hash grant id -> "<amount>|<used>|<expires ms or 0>", live grants only
//	granted  set of every grant id ever added
//	debt     spend no grant covered
//	c:<counter key>  hash s (spent), r, i, c, o (usage)

// luaPrelude holds the helpers every script shares; it mirrors grants.go.
const luaPrelude = `
local function fmt(n) return string.format('%d', n) end

-- held sums the holds live at now (ms, as a string); sweep first deletes
-- the expired ones, whose proxy never settled.
local function held(zkey, now, sweep)
  if sweep then redis.call('ZREMRANGEBYSCORE', zkey, '-inf', now) end
  local sum = 0
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', zkey, '(' .. now, '+inf')) do
    sum = sum + tonumber(string.match(m, '^(%d+)|'))
  end
  return sum
end

-- grants returns the grants live at now in the order spend draws them:
-- the one expiring first first, never-expiring last. prune deletes the
-- ones that no longer count.
local function grants(gkey, now, prune)
  local raw = redis.call('HGETALL', gkey)
  local gs = {}
  for i = 1, #raw, 2 do
    local a, u, e = string.match(raw[i + 1], '^(%d+)|(%d+)|(%d+)$')
    local g = {id = raw[i], amount = tonumber(a), used = tonumber(u), exp = tonumber(e)}
    if (g.exp == 0 or g.exp > now) and g.used < g.amount then
      table.insert(gs, g)
    elseif prune then
      redis.call('HDEL', gkey, g.id)
    end
  end
  table.sort(gs, function(x, y)
    if x.exp ~= y.exp then
      if x.exp == 0 then return false end
      if y.exp == 0 then return true end
      return x.exp < y.exp
    end
    return x.id < y.id
  end)
  return gs
end

local function unused(gs)
  local sum = 0
  for _, g in ipairs(gs) do sum = sum + g.amount - g.used end
  return sum
end

-- consume draws amount from the grants and stores them; it returns what
-- they could not cover.
local function consume(gkey, gs, amount)
  for _, g in ipairs(gs) do
    if amount <= 0 then break end
    local take = math.min(g.amount - g.used, amount)
    g.used = g.used + take
    amount = amount - take
    if g.used >= g.amount then
      redis.call('HDEL', gkey, g.id)
    else
      redis.call('HSET', gkey, g.id, fmt(g.amount) .. '|' .. fmt(g.used) .. '|' .. fmt(g.exp))
    end
  end
  return amount
end

-- commit adds one amount and its usage at ARGV[a..a+7] (kind, amount,
-- member, counter ttl, requests, input, cached, output) to the keys at
-- KEYS[k..k+3] (holds, grants, debt, counter).
local function commit(k, a, now)
  local ckey = KEYS[k + 3]
  redis.call('HINCRBY', ckey, 's', ARGV[a + 1])
  redis.call('HINCRBY', ckey, 'r', ARGV[a + 4])
  redis.call('HINCRBY', ckey, 'i', ARGV[a + 5])
  redis.call('HINCRBY', ckey, 'c', ARGV[a + 6])
  redis.call('HINCRBY', ckey, 'o', ARGV[a + 7])
  if ARGV[a + 3] ~= '0' then redis.call('PEXPIRE', ckey, ARGV[a + 3]) end
  if ARGV[a] == 'P' then
    local left = consume(KEYS[k + 1], grants(KEYS[k + 1], now, true), tonumber(ARGV[a + 1]))
    if left > 0 then redis.call('INCRBY', KEYS[k + 2], fmt(left)) end
  end
end
`

// reserveScript: KEYS[1] reservation; ARGV[1..5] now, hold expiry, id
// retention (ms), record, hold count; then per hold ARGV kind, amount,
// limit, member, calendar window end, counter count n, n times when each
// counter stops counting; and KEYS holds, grants, debt, n counters.
// Returns the decision "<admitted>|<refused>|<reset ms>|<remaining,...>".
var reserveScript = redis.NewScript(luaPrelude + `
local dec = redis.call('HGET', KEYS[1], 'dec')
if dec then return dec end
local now = tonumber(ARGV[1])
local holds = {}
local a, k = 6, 2
for i = 1, tonumber(ARGV[5]) do
  local h = {kind = ARGV[a], amount = tonumber(ARGV[a + 1]), limit = tonumber(ARGV[a + 2]),
    member = ARGV[a + 3], reset = tonumber(ARGV[a + 4]),
    zkey = KEYS[k], gkey = KEYS[k + 1], dkey = KEYS[k + 2], counters = {}, untils = {}}
  local n = tonumber(ARGV[a + 5])
  for j = 1, n do
    h.counters[j] = KEYS[k + 2 + j]
    h.untils[j] = tonumber(ARGV[a + 5 + j])
  end
  a, k = a + 6 + n, k + 3 + n
  holds[i] = h
end

-- What each account can still hold, and when a refusing budget frees spend.
local avail, reset = {}, {}
for _, h in ipairs(holds) do
  if avail[h.zkey] == nil then
    local hd = held(h.zkey, ARGV[1], true)
    reset[h.zkey] = 0
    if h.kind == 'P' then
      avail[h.zkey] = unused(grants(h.gkey, now, false)) - tonumber(redis.call('GET', h.dkey) or '0') - hd
    else
      local spent, oldest = 0, 0
      for j, c in ipairs(h.counters) do
        local s = tonumber(redis.call('HGET', c, 's') or '0')
        spent = spent + s
        if s > 0 and oldest == 0 then oldest = h.untils[j] end
      end
      avail[h.zkey] = h.limit - spent - hd
      if h.reset ~= 0 then reset[h.zkey] = h.reset else reset[h.zkey] = oldest end
    end
  end
end

local extra, refused, resetAt = {}, -1, 0
for i, h in ipairs(holds) do
  local e = extra[h.zkey] or 0
  if h.amount > avail[h.zkey] - e then
    refused, resetAt, extra = i - 1, reset[h.zkey], {}
    break
  end
  extra[h.zkey] = e + h.amount
end
local rem = {}
for i, h in ipairs(holds) do rem[i] = fmt(avail[h.zkey] - (extra[h.zkey] or 0)) end

local admitted = '0'
if refused < 0 then admitted = '1' end
dec = admitted .. '|' .. fmt(refused) .. '|' .. fmt(resetAt) .. '|' .. table.concat(rem, ',')
-- A refusal holds nothing and is not recorded: a retry decides anew.
if refused < 0 then
  for _, h in ipairs(holds) do redis.call('ZADD', h.zkey, ARGV[2], h.member) end
  redis.call('HSET', KEYS[1], 'st', 'held', 'dec', dec, 'rec', ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return dec
`)

// settleScript: KEYS[1] reservation; ARGV[1..3] now, commit count, unused;
// then per commit the ARGV and KEYS that commit reads, ZREM-ing the hold.
// Returns the reservation's state, or "unknown".
var settleScript = redis.NewScript(luaPrelude + `
local st = redis.call('HGET', KEYS[1], 'st')
if not st then return 'unknown' end
if st ~= 'held' then return st end
local now = tonumber(ARGV[1])
for i = 0, tonumber(ARGV[2]) - 1 do
  local a, k = 4 + i * 8, 2 + i * 4
  redis.call('ZREM', KEYS[k], ARGV[a + 2])
  commit(k, a, now)
end
redis.call('HSET', KEYS[1], 'st', 'settled')
return 'settled'
`)

// chargeScript: KEYS[1] charge id; ARGV[1..3] now, commit count, id
// retention (ms); then per commit as settleScript. Returns "dup" for an id
// already charged.
var chargeScript = redis.NewScript(luaPrelude + `
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[3]) then return 'dup' end
local now = tonumber(ARGV[1])
for i = 0, tonumber(ARGV[2]) - 1 do
  commit(2 + i * 4, 4 + i * 8, now)
end
return 'charged'
`)

// releaseScript: KEYS[1] reservation, KEYS[2..] holds; ARGV the members.
var releaseScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'st') ~= 'held' then return 0 end
for i = 2, #KEYS do redis.call('ZREM', KEYS[i], ARGV[i - 1]) end
redis.call('HSET', KEYS[1], 'st', 'released')
return 1
`)

// grantScript: KEYS grants, granted, debt; ARGV id, amount, expires, now.
var grantScript = redis.NewScript(luaPrelude + `
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
local now, exp = tonumber(ARGV[4]), tonumber(ARGV[3])
if tonumber(ARGV[2]) > 0 and (exp == 0 or exp > now) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|0|' .. ARGV[3])
end
local debt = tonumber(redis.call('GET', KEYS[3]) or '0')
if debt > 0 then
  local left = consume(KEYS[1], grants(KEYS[1], now, true), debt)
  redis.call('SET', KEYS[3], fmt(left))
end
return 1
`)

// balanceScript: KEYS holds, grants, debt, counters...; ARGV kind, limit,
// now. Returns spent, held, remaining and the four usage counts. It only
// reads.
var balanceScript = redis.NewScript(luaPrelude + `
local now = tonumber(ARGV[3])
local hd = held(KEYS[1], ARGV[3], false)
local sum = {0, 0, 0, 0, 0}
for j = 4, #KEYS do
  local v = redis.call('HMGET', KEYS[j], 's', 'r', 'i', 'c', 'o')
  for f = 1, 5 do sum[f] = sum[f] + tonumber(v[f] or '0') end
end
local rem
if ARGV[1] == 'P' then
  rem = unused(grants(KEYS[2], now, false)) - tonumber(redis.call('GET', KEYS[3]) or '0') - hd
else
  rem = tonumber(ARGV[2]) - sum[1] - hd
end
return {fmt(sum[1]), fmt(hd), fmt(rem), fmt(sum[2]), fmt(sum[3]), fmt(sum[4]), fmt(sum[5])}
`)
