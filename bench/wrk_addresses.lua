-- wrk script of bench.limits_bench: each request from another client address (X-Forwarded-For,
-- which the server trusts from 127.0.0.1), so the rate limiter keeps one count per request and
-- the workers exchange as many keys as the load brings. WRK_REPORT names wrk_report.lua.
dofile(os.getenv("WRK_REPORT"))

local n = 0
request = function()
  n = n + 1
  local a, b, c = math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256
  wrk.headers["X-Forwarded-For"] = string.format("10.%d.%d.%d", a, b, c)
  return wrk.format()
end
