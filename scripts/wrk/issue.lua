-- POST /coupons/1/issue for random users (coupon 1 of the bench catalog never sells out;
-- a user asking again gets 409 COUPON_ALREADY_ISSUED, which takes the same path)
math.randomseed(os.time())
local users = tonumber(os.getenv("BENCH_USERS") or "100000")
local headers = { ["Content-Type"] = "application/json" }
request = function()
  return wrk.format("POST", "/coupons/1/issue", headers, '{"user_id":' .. math.random(1, users) .. '}')
end
