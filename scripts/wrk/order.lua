-- POST /orders: one unit of a random product for a random user
math.randomseed(os.time())
local users = tonumber(os.getenv("BENCH_USERS") or "100000")
local headers = { ["Content-Type"] = "application/json" }
request = function()
  local body = '{"user_id":' .. math.random(1, users) .. ',"items":[{"product_id":' .. math.random(1, 10) .. ',"quantity":1}]}'
  return wrk.format("POST", "/orders", headers, body)
end
