-- wrk script for scripts/load.sh: POSTs one CDS Hooks request body (file named by the
-- RPS_CDS_LOAD_BODY environment variable) and prints a one-line summary that the shell
-- script greps, plus the count of non-200 answers (a load test that measures errors is void).
local path = os.getenv("RPS_CDS_LOAD_BODY")
local f = assert(io.open(path, "rb"), "cannot open " .. tostring(path))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

-- Each wrk thread has its own Lua state: count per thread, sum in done().
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non_200 = 0
end

function response(status, headers, body)
  if status ~= 200 then
    non_200 = non_200 + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("non_200")
  end
  local secs = summary.duration / 1e6
  io.write(string.format(
    "LOAD requests=%d duration_s=%.1f rps=%.1f errors=%d non_200=%d "
      .. "p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f mean_ms=%.2f\n",
    summary.requests, secs, summary.requests / secs,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout,
    bad,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
    latency:percentile(99) / 1e3, latency:percentile(99.9) / 1e3,
    latency.max / 1e3, latency.mean / 1e3))
end
