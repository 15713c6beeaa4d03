-- Basalt's rate limits: spends from, checks or refunds a batch of GCRA buckets
-- at once (a script runs atomically, so a spend is all or nothing).
--
-- KEYS[1] is the hash of runtime overrides, KEYS[2..] the buckets.
-- ARGV[1] is "spend", "check" or "refund"; ARGV[2] and ARGV[3] are now, as whole
-- unix seconds and the nanoseconds past them; then five arguments per bucket:
-- the cost, the count, the period in nanoseconds, the burst, and the name of the
-- bucket's field in the overrides hash. An override is "count/period/burst/comment".
--
-- A bucket holds its theoretical arrival time (TAT) as decimal unix nanoseconds.
-- Lua numbers are doubles, exact up to 2^53, which unix nanoseconds exceed, so
-- the script works in offsets from now (exact within about 104 days), splitting
-- stored times into seconds and nanoseconds to read and write them.
--
-- The reply holds five strings per bucket: "1" if allowed or "0", the delay in
-- nanoseconds until it would be allowed, and the count, period (nanoseconds) and
-- burst applied.

local NS = 1000000000
local mode = ARGV[1]
local now_s = tonumber(ARGV[2])
local now_n = tonumber(ARGV[3])

local function fmt(x)
  return string.format('%.0f', x)
end

-- A stored TAT as an offset from now, never negative (a TAT in the past, a
-- missing bucket and an unreadable value all mean an empty bucket).
local function offset(stored)
  if not stored then
    return 0
  end
  local len = string.len(stored)
  local s, n = 0, nil
  if len > 9 then
    s = tonumber(string.sub(stored, 1, len - 9))
    n = tonumber(string.sub(stored, len - 8))
  else
    n = tonumber(stored)
  end
  if not s or not n then
    return 0
  end
  local off = (s - now_s) * NS + (n - now_n)
  if off < 0 then
    return 0
  end
  return off
end

-- now + off as decimal unix nanoseconds.
local function absolute(off)
  local n = now_n + off
  local carry = math.floor(n / NS)
  local rest = n - carry * NS
  if rest < 0 then
    carry = carry - 1
    rest = rest + NS
  elseif rest >= NS then
    carry = carry + 1
    rest = rest - NS
  end
  return string.format('%.0f%09.0f', now_s + carry, rest)
end

local reply = {}
local writes = {}
local all_allowed = true
for i = 2, #KEYS do
  local a = 3 + (i - 2) * 5
  local cost = tonumber(ARGV[a + 1])
  local count = tonumber(ARGV[a + 2])
  local period = tonumber(ARGV[a + 3])
  local burst = tonumber(ARGV[a + 4])
  local override = redis.call('HGET', KEYS[1], ARGV[a + 5])
  if override then
    local c, p, b = string.match(override, '^(%d+)/(%d+)/(%d+)/')
    if c then
      count, period, burst = tonumber(c), tonumber(p), tonumber(b)
    end
  end
  if count < 1 then
    count = 1
  end
  if burst < 1 then
    burst = 1
  end
  -- The emission interval, period / count rounded down as the integer division
  -- of the in-process store does; the corrections undo the rounding of the
  -- floating-point quotient.
  local interval = math.floor(period / count)
  if interval * count > period then
    interval = interval - 1
  end
  if (interval + 1) * count <= period then
    interval = interval + 1
  end
  if interval < 1 then
    interval = 1
  end
  local tolerance = interval * burst
  local tat = offset(redis.call('GET', KEYS[i]))
  local new, allowed, retry
  if mode == 'refund' then
    new = tat - cost * interval
    if new < 0 then
      new = 0
    end
    allowed, retry = '1', 0
  else
    new = tat + cost * interval
    retry = new - tolerance
    if retry > 0 then
      allowed = '0'
      all_allowed = false
    else
      allowed, retry = '1', 0
    end
  end
  writes[#writes + 1] = new
  reply[#reply + 1] = allowed
  reply[#reply + 1] = fmt(retry)
  reply[#reply + 1] = fmt(count)
  reply[#reply + 1] = fmt(period)
  reply[#reply + 1] = fmt(burst)
end

if mode == 'refund' or (mode == 'spend' and all_allowed) then
  for j, new in ipairs(writes) do
    local key = KEYS[j + 1]
    if new > 0 then
      -- Expire the bucket when it would be empty: the TAT minus now, rounded up.
      redis.call('SET', key, absolute(new), 'PX', fmt(math.ceil(new / 1000000)))
    else
      redis.call('DEL', key)
    end
  end
end

return reply
