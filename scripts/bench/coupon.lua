-- First-come coupon issue in Redis, the durable peer of POST /coupons/{id}/issue:
-- KEYS[1] remaining units, KEYS[2] the set of holders, ARGV[1] the user.
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return -1 end
local remaining = tonumber(redis.call('GET', KEYS[1]) or '0')
if remaining <= 0 then return -2 end
redis.call('DECR', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
