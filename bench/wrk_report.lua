-- wrk script of the benchmarks: optional method and JSON body from the environment
-- (WRK_METHOD, WRK_BODY), and a one-line JSON summary at the end for the harness to parse.
-- With WRK_OK_PREFIX set, an answer whose body does not start with it counts as not_ok: lwork
-- answers most failures with HTTP 200 and {"status":"failed",...}, which wrk alone counts as
-- successes.
local method = os.getenv("WRK_METHOD")
local body = os.getenv("WRK_BODY")
local ok_prefix = os.getenv("WRK_OK_PREFIX")
if method and method ~= "" then
  wrk.method = method
end
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

not_ok = 0
if ok_prefix and ok_prefix ~= "" then
  function response(status, headers, answer)
    if answer:sub(1, #ok_prefix) ~= ok_prefix then
      not_ok = not_ok + 1
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + (thread:get("not_ok") or 0)
  end
  io.write(string.format(
    '{"wrk_requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d,"non_2xx_3xx":%d,"not_ok":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    failed, latency:percentile(50), latency:percentile(99)))
end
