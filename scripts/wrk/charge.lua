-- POST /users/{random user}/points/charge, 1 point at a time
math.randomseed(os.time())
local users = tonumber(os.getenv("BENCH_USERS") or "100000")
local headers = { ["Content-Type"] = "application/json" }
request = function()
  return wrk.format("POST", "/users/" .. math.random(1, users) .. "/points/charge", headers, '{"amount":1}')
end
