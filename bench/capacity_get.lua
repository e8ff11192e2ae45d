-- wrk script for bench/capacity_benchmark.py: GETs one URL (headers from -H) and counts answers
-- other than 200; done() prints one line, "BENCH-RESULT {json}".
--
--   wrk -t T -c C -d D -H "Authorization: Bearer …" -s bench/capacity_get.lua http://host:port/path

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

not_ok = 0

function response(status, headers, body)
  if status ~= 200 then
    not_ok = not_ok + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("not_ok")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"duration_us":%d,"requests":%d,"not_ok":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p99_us":%d}\n',
    summary.duration, summary.requests, bad, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)
  ))
end
