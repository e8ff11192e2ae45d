-- wrk script for bench/ingest_benchmark.py: POSTs pre-generated, pre-signed webhook deliveries.
--
--   wrk -t T -c C -d D -s bench/ingest.lua http://host:port/webhook/whatsapp -- <file> <T>
--
-- <file> holds one delivery per line: "<X-Hub-Signature-256 value>\t<JSON body>". Thread k (1..T)
-- sends lines k, k+T, k+2T, … in order, each once, so the T threads together walk the file in
-- order. Every request is built in init(), before the clock starts. done() prints one line,
-- "BENCH-RESULT {json}", with what each thread issued and the latency distribution.

local threads = {}
local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  table.insert(threads, thread)
  next_id = next_id + 1
end

function init(args)
  local path = args[1]
  local nthreads = tonumber(args[2])
  reqs = {}
  local i = 0
  for line in io.lines(path) do
    if i % nthreads == id - 1 then
      local tab = line:find("\t", 1, true)
      local headers = {
        ["Content-Type"] = "application/json",
        ["X-Hub-Signature-256"] = line:sub(1, tab - 1),
      }
      reqs[#reqs + 1] = wrk.format("POST", nil, headers, line:sub(tab + 1))
    end
    i = i + 1
  end
  issued = 0
  completed = 0
  not_ok = 0
  exhausted = 0
  statuses = {}
end

function request()
  issued = issued + 1
  local r = reqs[issued]
  if r == nil then
    -- Ran out of bodies: repeat the last one (an exact redelivery) and say so in the result.
    exhausted = exhausted + 1
    r = reqs[#reqs]
  end
  return r
end

function response(status, headers, body)
  completed = completed + 1
  if status ~= 200 then
    not_ok = not_ok + 1
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local parts = {}
  for _, t in ipairs(threads) do
    local counts = {}
    for status, n in pairs(t:get("statuses")) do
      counts[#counts + 1] = string.format('"%d":%d', status, n)
    end
    parts[#parts + 1] = string.format(
      '{"id":%d,"issued":%d,"completed":%d,"not_ok":%d,"exhausted":%d,"statuses":{%s}}',
      t:get("id"), t:get("issued"), t:get("completed"), t:get("not_ok"), t:get("exhausted"),
      table.concat(counts, ",")
    )
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"duration_us":%d,"requests":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},"threads":[%s]}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    table.concat(parts, ",")
  ))
end
