-- wrk script for bench/media_serve_benchmark.py: GETs one URL (headers from wrk's -H flags) and
-- prints one line, "BENCH-RESULT {json}", with the totals and the latency distribution.
--
--   wrk -t T -c C -d D -s bench/media.lua -H "Authorization: Bearer …" [-H "Range: bytes=…"] URL
--
-- No response() callback: with one, wrk would copy every body into Lua (1 MB per answer). The
-- benchmark checks the answers instead by their total size (summary.bytes / requests) and by
-- wrk's count of statuses other than 2xx/3xx, after checking one answer byte for byte itself.

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"duration_us":%d,"requests":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean
  ))
end
