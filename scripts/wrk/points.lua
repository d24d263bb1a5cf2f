-- GET /users/{random user}/points
math.randomseed(os.time())
local users = tonumber(os.getenv("BENCH_USERS") or "100000")
request = function()
  return wrk.format("GET", "/users/" .. math.random(1, users) .. "/points")
end
