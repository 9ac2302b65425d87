-- A circuit's hash and the clock of the node that holds it, in one round trip (works on Redis
-- Cluster, where a bare TIME would go to any node). Reply: {seconds, microseconds, HGETALL}.
local t = redis.call('TIME')
return {t[1], t[2], redis.call('HGETALL', KEYS[1])}
