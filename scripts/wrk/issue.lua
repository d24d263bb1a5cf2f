-- POST /coupons/{c}/issue for distinct (user, coupon) pairs: each thread walks its own share
-- of users 1..BENCH_USERS, coupon by coupon (10 in the bench catalog), so every request can
-- succeed (201) and the run measures issues, not COUPON_ALREADY_ISSUED refusals.
local users = tonumber(os.getenv("BENCH_USERS") or "100000")
local headers = { ["Content-Type"] = "application/json" }
local count = 0

function setup(thread)
  count = count + 1
  thread:set("id", count - 1)
end

function init(args)
  step = 0
end

request = function()
  local n = step * 2 + id -- wrk -t2: two threads interleave
  step = step + 1
  local user = n % users + 1
  local coupon = math.floor(n / users) % 10 + 1
  return wrk.format("POST", "/coupons/" .. coupon .. "/issue", headers, '{"user_id":' .. user .. '}')
end
