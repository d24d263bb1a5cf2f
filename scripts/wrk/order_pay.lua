-- Order-then-pay: each connection's thread places an order (one unit of a random product for a
-- random user), and its next request pays the oldest order it placed. Successful payments are
-- counted per thread and reported at the end as goodput (PAID orders per second).
math.randomseed(os.time())
local users = tonumber(os.getenv("BENCH_USERS") or "100000")
local headers = { ["Content-Type"] = "application/json" }
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  unpaid = {}
  paid = 0
  placed = 0
  refused = 0
end

request = function()
  local next = table.remove(unpaid, 1)
  if next then
    return wrk.format("POST", "/orders/" .. next.order .. "/payment", headers, '{"user_id":' .. next.user .. '}')
  end
  local user = math.random(1, users)
  local body = '{"user_id":' .. user .. ',"items":[{"product_id":' .. math.random(1, 10) .. ',"quantity":1}]}'
  return wrk.format("POST", "/orders", headers, body)
end

-- Replies on different connections come back in any order, so each is told by its status:
-- 201 is a placed order, 200 a payment.
response = function(status, headers, body)
  if status == 201 then
    placed = placed + 1
    local order = body:match('"order_id":(%d+)')
    local user = body:match('"user_id":(%d+)')
    table.insert(unpaid, { order = order, user = user })
  elseif status == 200 then
    paid = paid + 1
  else
    refused = refused + 1
  end
end

done = function(summary, latency, requests)
  local p, o, r = 0, 0, 0
  for _, thread in ipairs(threads) do
    p = p + thread:get("paid")
    o = o + thread:get("placed")
    r = r + thread:get("refused")
  end
  local seconds = summary.duration / 1e6
  io.write(string.format("GOODPUT placed/s %.0f paid/s %.0f refused %d\n", o / seconds, p / seconds, r))
end
