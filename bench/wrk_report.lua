-- wrk script of bench/http_bench.py: optional method and JSON body from the environment
-- (WRK_METHOD, WRK_BODY), and a one-line JSON summary at the end for the harness to parse.
local method = os.getenv("WRK_METHOD")
local body = os.getenv("WRK_BODY")
if method and method ~= "" then
  wrk.method = method
end
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"wrk_requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d,"non_2xx_3xx":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
